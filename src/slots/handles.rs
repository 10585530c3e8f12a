//! The handle state machine (invariant 4).
//!
//! Handle slots move `FREE → INIT → IDLE ⇄ BUSY`, then `IDLE | BUSY → CLOSED → FREE` under
//! the next generation; slots of RAII enumerations (and of anything else that keeps its
//! own cursor) move `FREE → INIT → OWNED → FREE` and keep their generation, so only handles
//! wear a slot out (the arithmetic is in `crate::handle`). A handle carries the generation
//! it was issued with, so it can never reach a later enumeration of the same slot.
//!
//! A call on a handle first CASes `IDLE → BUSY` with the handle's generation: only then may
//! it touch the cursor. A call that finds the slot `BUSY` under the handle's generation
//! fails with `Busy` (another call holds the cursor; the handle stays valid), any other
//! state with `Stale`. The call puts the slot back `BUSY → IDLE` when it is done, also when
//! the embedder's `Clone` panics under it (a drop guard does it while unwinding).
//! `close` on an `IDLE` handle CASes `IDLE → CLOSED` and releases the slot; `close` on a
//! `BUSY` handle CASes `BUSY → CLOSED`, and the call in flight, which was linearized before
//! the close, releases the slot when it finishes (or unwinds). Either way the winning close
//! leaves the slot `CLOSED`, where every other close and call fails, until it is `FREE`
//! under the next generation. So exactly one close wins, and no call that starts after a
//! close reaches the cursor.

#[cfg(rtm_negative = "no-generation-check")]
use super::array::gen_of;
use super::array::{word, Kind, Slots, BUSY, CLOSED, IDLE};
use crate::error::Error;
use crate::handle::EnumHandle;
use crate::sync::Ordering;

/// Why a handle call failed.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(crate) enum HandleError {
    /// Closed, stale, forged, foreign, or an RAII enumeration's slot.
    Stale,
    /// Open, but another call holds its cursor.
    Busy,
}

impl From<HandleError> for Error {
    fn from(e: HandleError) -> Error {
        match e {
            HandleError::Stale => Error::InvalidHandle,
            HandleError::Busy => Error::Busy,
        }
    }
}

/// Puts a handle's slot back when its call ends, normally or by unwinding: `BUSY → IDLE`,
/// or, if a close marked the slot `CLOSED` meanwhile, releases it for the close.
struct CallEnd<'a, C> {
    slots: &'a Slots<C>,
    i: usize,
    gen: u64,
}

impl<C> Drop for CallEnd<'_, C> {
    fn drop(&mut self) {
        let slot = self.slots.owned(self.i);
        // Release: our cursor writes happen before the next call's Acquire CAS.
        if slot
            .state
            .compare_exchange(
                word(self.gen, BUSY),
                word(self.gen, IDLE),
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_err()
        {
            // A close arrived while we ran (BUSY -> CLOSED): it is ours to finish.
            self.slots.release(self.i, self.gen, Kind::Handle);
        }
    }
}

impl<C> Slots<C> {
    /// The handle of slot `i` under generation `gen`.
    pub(crate) fn handle(&self, i: usize, gen: u64) -> EnumHandle {
        EnumHandle::pack(self.lease.id, gen * self.len() as u64 + i as u64)
    }

    /// The slot and generation a handle names, if it claims to be of this table.
    #[inline]
    fn locate(&self, h: EnumHandle) -> Result<(usize, u64), HandleError> {
        if self.lease.id == 0 || h.table_id() != self.lease.id as u64 {
            return Err(HandleError::Stale);
        }
        let n = self.len() as u64;
        let s = h.serial();
        Ok(match self.shift {
            Some(k) => ((s & (n - 1)) as usize, s >> k),
            None => ((s % n) as usize, s / n),
        })
    }

    #[inline]
    fn handle_gen(&self, i: usize, gen: u64) -> u64 {
        #[cfg(rtm_negative = "no-generation-check")]
        {
            // Broken on purpose: trust whatever generation the slot has now.
            let _ = gen;
            self.slot(i)
                .map_or(0, |s| gen_of(s.state.load(Ordering::Relaxed)))
        }
        #[cfg(not(rtm_negative = "no-generation-check"))]
        {
            let _ = i;
            gen
        }
    }

    /// Runs `f` on the cursor of handle `h`. Fails with `Busy` if another call holds the
    /// cursor, with `Stale` if the handle is not open (closed, stale, forged, foreign, or
    /// naming an RAII enumeration's slot).
    ///
    /// If `f` panics, the slot is put back (`IDLE`, or released if a close arrived
    /// meanwhile) while the panic unwinds, so the handle stays usable and closable; what
    /// `f` did to the cursor before the panic stays done.
    pub(crate) fn with_handle<R>(
        &self,
        h: EnumHandle,
        f: impl FnOnce(&mut C) -> R,
    ) -> Result<R, HandleError> {
        let (i, gen) = self.locate(h)?;
        // A slot never taken has issued no handle.
        let slot = self.slot(i).ok_or(HandleError::Stale)?;
        let gen = self.handle_gen(i, gen);
        // Acquire pairs with the Release that made the slot IDLE: we see its cursor.
        if let Err(cur) = slot.state.compare_exchange(
            word(gen, IDLE),
            word(gen, BUSY),
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            if cur != word(gen, BUSY) {
                return Err(HandleError::Stale);
            }
            #[cfg(rtm_negative = "call-ignores-busy")]
            {
                // Broken on purpose: use the cursor that the call in flight holds.
                // SAFETY: none; this is the negative control of the busy state.
                return slot
                    .cursor
                    .with_mut(|p| unsafe { (*p).as_deref_mut() }.map(f))
                    .ok_or(HandleError::Stale);
            }
            #[cfg(not(rtm_negative = "call-ignores-busy"))]
            return Err(HandleError::Busy);
        }
        let _end = CallEnd {
            slots: self,
            i,
            gen,
        };
        // SAFETY: our CAS moved the slot from IDLE to BUSY under the handle's generation;
        // until `_end` moves it back (or releases it), also if `f` panics, no other call
        // or close touches the cursor.
        let r = slot
            .cursor
            .with_mut(|p| unsafe { (*p).as_deref_mut() }.map(f));
        r.ok_or(HandleError::Stale)
    }

    /// Closes handle `h`. Exactly one of racing closes succeeds.
    pub(crate) fn close_handle(&self, h: EnumHandle) -> Result<(), HandleError> {
        let (i, gen) = self.locate(h)?;
        // A slot never taken has issued no handle.
        let slot = self.slot(i).ok_or(HandleError::Stale)?;
        let gen = self.handle_gen(i, gen);
        let mut cur = slot.state.load(Ordering::Relaxed);
        loop {
            if cur == word(gen, IDLE) {
                // Take the slot straight to CLOSED, then release it. Not through BUSY: a
                // racing close that met that BUSY would take us for a call in flight, mark
                // the slot CLOSED and report success, and so would we. Acquire pairs with
                // the Release that made the slot IDLE: we see the last call's cursor writes
                // before `release` clears the cursor.
                match slot.state.compare_exchange(
                    cur,
                    word(gen, CLOSED),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        self.release(i, gen, Kind::Handle);
                        return Ok(());
                    }
                    Err(c) => cur = c,
                }
            } else if cur == word(gen, BUSY) {
                #[cfg(rtm_negative = "close-ignores-busy")]
                {
                    // Broken on purpose: release under the running call's feet.
                    if slot
                        .state
                        .compare_exchange(
                            cur,
                            word(gen, CLOSED),
                            Ordering::Acquire,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                    {
                        self.release(i, gen, Kind::Handle);
                        return Ok(());
                    }
                    cur = slot.state.load(Ordering::Relaxed);
                    continue;
                }
                // The running call finishes the close (see `CallEnd`).
                #[cfg(not(rtm_negative = "close-ignores-busy"))]
                match slot.state.compare_exchange(
                    cur,
                    word(gen, CLOSED),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Ok(()),
                    Err(c) => cur = c,
                }
            } else {
                return Err(HandleError::Stale);
            }
        }
    }
}
