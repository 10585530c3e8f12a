//! The error values every fallible call returns, with their Win32 codes.

use std::fmt;

/// What went wrong, as a value. Each variant maps to the Win32 code that the Windows Routing
/// Table Manager returns in the same situation ([`Error::code`]).
///
/// ```
/// use rtm::Error;
/// assert_eq!(Error::InvalidHandle.code(), 6);
/// assert_eq!(Error::NoSystemResources.to_string(), "no free enumeration slot");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The enumeration handle is closed, stale, forged, or of another table
    /// (`ERROR_INVALID_HANDLE`, 6).
    InvalidHandle,
    /// Every enumeration slot of the table is in use (`ERROR_NO_SYSTEM_RESOURCES`, 1450).
    NoSystemResources,
    /// The enumeration has returned every route it will return (`ERROR_NO_MORE_ITEMS`, 259).
    NoMoreRoutes,
    /// The route to delete is not in the table (`ERROR_NO_MORE_ITEMS`, 259, as RTMv1 does).
    NoSuchRoute,
    /// An argument is malformed, e.g. a prefix with host bits set (`ERROR_INVALID_PARAMETER`, 87).
    InvalidParameter,
    /// Another call on this handle is in flight: a handle is one cursor, driven by one
    /// caller at a time. The handle stays valid; try again (`ERROR_BUSY`, 170).
    Busy,
    /// A feed fell further behind than the table's journal holds: a change it had not read
    /// was overwritten. The feed is dead from then on; subscribe again
    /// (`ERROR_CONNECTION_ABORTED`, 1236).
    Lagged,
}

impl Error {
    /// The Win32 error code of this error.
    ///
    /// ```
    /// assert_eq!(rtm::Error::NoMoreRoutes.code(), 259);
    /// assert_eq!(rtm::Error::InvalidParameter.code(), 87);
    /// ```
    pub fn code(self) -> u32 {
        match self {
            Error::InvalidHandle => 6,
            Error::NoSystemResources => 1450,
            Error::NoMoreRoutes | Error::NoSuchRoute => 259,
            Error::InvalidParameter => 87,
            Error::Busy => 170,
            Error::Lagged => 1236,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::InvalidHandle => "invalid enumeration handle",
            Error::NoSystemResources => "no free enumeration slot",
            Error::NoMoreRoutes => "no more routes",
            Error::NoSuchRoute => "no such route",
            Error::InvalidParameter => "invalid parameter",
            Error::Busy => "the enumeration handle is in use by another call",
            Error::Lagged => "the feed fell behind the journal and lost changes",
        })
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn win32_codes() {
        assert_eq!(Error::InvalidHandle.code(), 6);
        assert_eq!(Error::NoSystemResources.code(), 1450);
        assert_eq!(Error::NoMoreRoutes.code(), 259);
        assert_eq!(Error::NoSuchRoute.code(), 259);
        assert_eq!(Error::InvalidParameter.code(), 87);
        assert_eq!(Error::Busy.code(), 170);
        assert_eq!(Error::Lagged.code(), 1236);
        assert_eq!(Error::NoSuchRoute.to_string(), "no such route");
    }
}
