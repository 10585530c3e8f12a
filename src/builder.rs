//! The table builder: the limits a table is created with.

use std::fmt;
use std::marker::PhantomData;

use crate::prefix::Prefix;
use crate::table::{RouteTable, DEFAULT_MAX_ENUMERATIONS};

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
    /// and at most 2^30; the default is [`DEFAULT_JOURNAL_CAPACITY`].
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
        RouteTable::from_builder(self)
    }
}
