//! Whole-table operations: RTMv1's `RtmBlockDeleteRoutes` and `RtmBlockSetRouteEnable`.
//!
//! A block operation is an enumeration that writes. It pins a snapshot `s` in a slot, walks
//! the snapshot's matching routes with an ordinary cursor, and at each one writes to the
//! node the cursor stands on: no search from the head per route, so deleting a full-table
//! peer costs one pointer step and one version push per route.
//!
//! # What it changes, and why
//!
//! The set is fixed at the call: the routes that match the criteria at `s` (with
//! `best_only`, `best_multipath` and `start_after` as an enumeration reads them at `s`). All of them are
//! changed by one commit (see `commit`), at one version, each *only if the version `s`
//! sees is still the key's newest one*: its push is conditional on the chain head being
//! exactly that version. So:
//!
//! * a route added after `s` is not in the set and is untouched;
//! * a route that another writer replaced, deleted or re-enabled after `s` is skipped and
//!   not counted: that writer's change is newer than the snapshot that defined the set,
//!   and overwriting it would lose a write that the caller never saw (a peer that flaps
//!   back up while its old routes are being flushed keeps the routes it re-announced);
//! * the changes are one commit, so readers, enumerations, feeds and later snapshots see
//!   the block operation done or not done, never half of it (RTMv1's block calls, as a
//!   reader should see them).
//!
//! The result is the same as a caller enumerating at `s` and issuing, for each route, a
//! "delete (or rewrite) this key if it is still the version I read" — without the searches.

use crate::commit::Plan;
use crate::criteria::Criteria;
use crate::error::Error;
use crate::prefix::Prefix;
use crate::table::RouteTable;
use crate::version::Entry;

/// Routes handled under one epoch pin, which is then renewed so that a long walk does not
/// hold back the epoch.
const SPAN: usize = 256;

impl<P: Prefix, V: Clone + Send + Sync + 'static> RouteTable<P, V> {
    /// Deletes every route that matches `criteria` at a snapshot taken now
    /// (RTMv1's `RtmBlockDeleteRoutes`), and returns how many it deleted.
    ///
    /// The routes to delete are those the snapshot holds; they are deleted by one commit,
    /// at one version, each only if the route is still the version the snapshot saw. So a
    /// route that another writer replaced or deleted after the snapshot is left alone and
    /// not counted (that write is newer than the request, and wins), and a route added
    /// after the snapshot is untouched. Two racing calls delete each route once between
    /// them. Readers and enumerations keep going throughout, and see all of the deletions
    /// or none. The cost is one step along the table and one push per route, no search
    /// per route, plus a plan of 48 bytes or so per route while the call runs. What the
    /// call deletes stays allocated until it returns (its own snapshot can see it), then
    /// the reclaimer frees it as usual.
    ///
    /// The snapshot takes an enumeration slot for the duration of the call:
    /// [`Error::NoSystemResources`] when none is free. [`Error::InvalidParameter`] for a
    /// prefix with host bits set in `criteria`.
    ///
    /// ```
    /// use rtm::{Criteria, Error, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
    /// let t = RouteTable::<Ipv4Net, u32>::new();
    /// let hop = "192.0.2.1".parse().unwrap();
    /// for (p, proto) in [("10.0.0.0/8", ProtocolId::BGP), ("10.1.0.0/16", ProtocolId::BGP), ("10.2.0.0/16", ProtocolId::OSPF)] {
    ///     t.add_route(Route::new(RouteKey::new(p.parse().unwrap(), proto, InterfaceId(1), hop), 0)).unwrap();
    /// }
    /// // the BGP peer went down: flush its routes
    /// assert_eq!(t.delete_routes(Criteria::all().protocol(ProtocolId::BGP)), Ok(2));
    /// assert_eq!(t.route_count(), 1);
    /// let bad = Criteria::all().within("10.1.2.3/8".parse().unwrap());
    /// assert_eq!(t.delete_routes(bad), Err(Error::InvalidParameter));
    /// ```
    pub fn delete_routes(&self, criteria: Criteria<P>) -> Result<usize, Error> {
        self.block(criteria, |_| Some(None))
    }

    /// Enables or disables every route that matches `criteria` at a snapshot taken now
    /// (RTMv1's `RtmBlockSetRouteEnable`), and returns how many it changed.
    ///
    /// Disabled routes match whatever `include_disabled` says (enabling them is the point);
    /// with `best_only`, each network's best route at the snapshot matches, which is an
    /// enabled one (with `best_multipath`, each route of its best set). A route already in the requested state is not rewritten and not
    /// counted. Otherwise
    /// as [`RouteTable::delete_routes`]: one commit for every changed route, a route
    /// changed by another writer after the snapshot is left alone, same errors.
    ///
    /// ```
    /// use rtm::{Criteria, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
    /// let t = RouteTable::<Ipv4Net, u32>::new();
    /// let hop = "192.0.2.1".parse().unwrap();
    /// for (p, ifc) in [("10.0.0.0/8", 1), ("10.1.0.0/16", 2), ("10.2.0.0/16", 2)] {
    ///     t.add_route(Route::new(RouteKey::new(p.parse().unwrap(), ProtocolId::RIP, InterfaceId(ifc), hop), 0)).unwrap();
    /// }
    /// // interface 2 went down
    /// assert_eq!(t.set_routes_enabled(Criteria::all().interface(InterfaceId(2)), false), Ok(2));
    /// assert_eq!(t.lookup("10.1.2.3".parse().unwrap()).unwrap().key.prefix.to_string(), "10.0.0.0/8");
    /// assert_eq!(t.route_count(), 3);   // disabled routes are still routes
    /// // and came back up
    /// assert_eq!(t.set_routes_enabled(Criteria::all().interface(InterfaceId(2)), true), Ok(2));
    /// assert_eq!(t.set_routes_enabled(Criteria::all().interface(InterfaceId(2)), true), Ok(0));
    /// ```
    pub fn set_routes_enabled(&self, criteria: Criteria<P>, enabled: bool) -> Result<usize, Error> {
        let criteria = criteria.include_disabled();
        self.block(criteria, |e: &Entry<V>| {
            (e.enabled != enabled).then(|| {
                Some(Entry {
                    priority: e.priority,
                    metric: e.metric,
                    enabled,
                    value: e.value.clone(),
                })
            })
        })
    }

    /// Walks the routes matching `criteria` at a snapshot taken now and commits, for each
    /// one for which `rewrite` gives a new version (`Some(None)` is a deletion marker),
    /// that version, if the key's newest version is still the one the snapshot sees; all in
    /// one commit. Returns how many it wrote.
    fn block(
        &self,
        criteria: Criteria<P>,
        rewrite: impl Fn(&Entry<V>) -> Option<Option<Entry<V>>>,
    ) -> Result<usize, Error> {
        // An enumeration pins the snapshot (and so keeps the cursor's node linked between
        // spans, see `Cursor::advance`, and every version it sees allocated, so that their
        // addresses identify them until the commit is made) and releases it on every way
        // out, panics included.
        let mut snapshot = self.enumerate(criteria)?;
        let cursor = snapshot.cursor_mut();
        let mut plans = Vec::new();
        loop {
            let guard = self.epoch.pin();
            let mut exhausted = true;
            for _ in 0..SPAN {
                let Some(hit) = cursor.advance(&self.list, &self.clock, &guard) else {
                    break;
                };
                exhausted = false;
                let Some(new) = rewrite(hit.entry) else {
                    continue;
                };
                // Only over the version the snapshot saw: if the head is anything else, a
                // writer committed (or is committing) this key after the snapshot. The
                // address is an identity (no ABA): the version is visible at our pinned
                // snapshot, so the reclaimer keeps it and its address is not reused.
                #[cfg(not(rtm_negative = "block-unconditional"))]
                let plan = Plan::over(hit.node.key, new, hit.version.erased());
                // Broken on purpose: write over whatever is there.
                #[cfg(rtm_negative = "block-unconditional")]
                let plan = Plan::anyway(hit.node.key, new);
                plans.push(plan);
            }
            drop(guard);
            if exhausted {
                break;
            }
        }
        let changed = match plans.is_empty() {
            true => 0,
            false => self.commit_plans(&mut plans)?.1,
        };
        drop(snapshot);
        Ok(changed)
    }
}
