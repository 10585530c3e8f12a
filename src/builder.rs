//! The table builder: the limits a table is created with.

use std::fmt;
use std::marker::PhantomData;

use crate::prefix::Prefix;
use crate::sync::Epoch;
use crate::table::RouteTable;

/// The default limit of open enumerations of [`RouteTable::new`].
///
/// ```
/// let t = rtm::RouteTable::<rtm::Ipv4Net, ()>::new();
/// assert_eq!(t.max_enumerations(), rtm::DEFAULT_MAX_ENUMERATIONS);
/// ```
pub const DEFAULT_MAX_ENUMERATIONS: usize = 1024;

/// The journal capacity of a table built without [`Builder::journal_capacity`]: 65,536
/// commits.
///
/// ```
/// assert_eq!(rtm::DEFAULT_JOURNAL_CAPACITY, 65_536);
/// ```
pub const DEFAULT_JOURNAL_CAPACITY: usize = 1 << 16;

/// Builds a [`RouteTable`] with limits other than the defaults.
///
/// ```
/// use rtm::{Ipv4Net, RouteTable};
/// let t = RouteTable::<Ipv4Net, u32>::builder()
///     .max_enumerations(16)
///     .journal_capacity(1 << 20)
///     .build();
/// assert_eq!(t.max_enumerations(), 16);
/// assert_eq!(t.journal_capacity(), 1 << 20);
/// ```
pub struct Builder<P: Prefix, V> {
    pub(crate) max_enumerations: usize,
    pub(crate) journal_capacity: usize,
    _marker: PhantomData<fn() -> (P, V)>,
}

impl<P: Prefix, V> fmt::Debug for Builder<P, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("max_enumerations", &self.max_enumerations)
            .field("journal_capacity", &self.journal_capacity)
            .finish()
    }
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> Builder<P, V> {
    pub(crate) fn new() -> Self {
        Self {
            max_enumerations: DEFAULT_MAX_ENUMERATIONS,
            journal_capacity: DEFAULT_JOURNAL_CAPACITY,
            _marker: PhantomData,
        }
    }

    /// The limit of open enumerations and feeds, as
    /// [`RouteTable::with_max_enumerations`]: clamped to `1..=`[`MAX_ENUMERATIONS`](crate::MAX_ENUMERATIONS).
    ///
    /// Cost: slots are allocated 64 at a time, when an enumeration, handle or feed first
    /// needs one of them (a slot holds a handle's cursor: under 200 bytes for IPv4), plus a
    /// bit and a pointer's share per slot from the start. A table that never opens more
    /// than 64 at once holds one segment whatever its limit.
    ///
    /// ```
    /// let t = rtm::RouteTable::<rtm::Ipv4Net, ()>::builder().max_enumerations(0).build();
    /// assert_eq!(t.max_enumerations(), 1);
    /// ```
    pub fn max_enumerations(mut self, n: usize) -> Self {
        self.max_enumerations = n;
        self
    }

    /// How many commits the journal holds: how far a feed may fall behind before it gets
    /// [`Error::Lagged`](crate::Error::Lagged). Rounded up to a power of two, at least 64
    /// and at most 2^28; the default is [`DEFAULT_JOURNAL_CAPACITY`].
    ///
    /// Cost: 8 bytes per commit position, allocated in segments of 1,024 positions (8 KiB)
    /// as the table's commits first reach them, so a table that has made `c` commits holds
    /// at most `8 * min(c, capacity)` bytes of journal, plus a directory of 8 bytes per
    /// 1,024 positions of capacity from the start (512 bytes at the default).
    ///
    /// ```
    /// let t = rtm::RouteTable::<rtm::Ipv4Net, ()>::builder().journal_capacity(1000).build();
    /// assert_eq!(t.journal_capacity(), 1024);
    /// ```
    pub fn journal_capacity(mut self, n: usize) -> Self {
        self.journal_capacity = n;
        self
    }

    /// The table.
    ///
    /// ```
    /// let t = rtm::RouteTable::<rtm::Ipv6Net, ()>::builder().build();
    /// assert_eq!(t.route_count(), 0);
    /// ```
    pub fn build(self) -> RouteTable<P, V> {
        RouteTable::build(self.max_enumerations, self.journal_capacity, Epoch::new())
    }
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> Default for RouteTable<P, V> {
    fn default() -> Self {
        Self::new()
    }
}

/// Building a table: the shorthands and the builder.
impl<P: Prefix, V: Clone + Send + Sync + 'static> RouteTable<P, V> {
    /// An empty table allowing [`DEFAULT_MAX_ENUMERATIONS`] (1024) open enumerations.
    ///
    /// ```
    /// let t = rtm::RouteTable::<rtm::Ipv6Net, ()>::new();
    /// assert_eq!(t.route_count(), 0);
    /// ```
    pub fn new() -> Self {
        Self::with_max_enumerations(DEFAULT_MAX_ENUMERATIONS)
    }

    /// An empty table allowing `n` open enumerations, clamped to `1..=4096`
    /// ([`MAX_ENUMERATIONS`](crate::MAX_ENUMERATIONS), which leaves every slot at least
    /// 2^40 handle generations).
    ///
    /// ```
    /// use rtm::{Criteria, Error, Ipv4Net, RouteTable};
    /// let t = RouteTable::<Ipv4Net, ()>::with_max_enumerations(1);
    /// let e = t.enumerate(Criteria::all()).unwrap();
    /// assert_eq!(t.enumerate(Criteria::all()).err(), Some(Error::NoSystemResources));
    /// drop(e);
    /// assert!(t.enumerate(Criteria::all()).is_ok());
    /// ```
    pub fn with_max_enumerations(n: usize) -> Self {
        Self::builder().max_enumerations(n).build()
    }

    /// A builder for a table with other limits (open enumerations, journal capacity).
    ///
    /// ```
    /// let t = rtm::RouteTable::<rtm::Ipv4Net, u32>::builder().max_enumerations(8).build();
    /// assert_eq!(t.max_enumerations(), 8);
    /// ```
    pub fn builder() -> Builder<P, V> {
        Builder::new()
    }
}
