// Included by lib.rs only in the `abi-probe` build: what the next minor version of the library
// might add (a builder setter, a field at the end of `tokengate_stats` and of `tokengate_event`,
// a higher version). `ffi/tests/install.rs` builds this variant and runs a program compiled
// against the header without it, to show that such additions break no old binary. Never part of
// a release build.

/// The probe's additions.
mod abi_probe {
    use crate::client::tokengate_stats;
    use crate::events::tokengate_event;

    /// `tokengate_stats` with one more field at its end.
    #[repr(C)]
    pub(crate) struct StatsNext {
        v1: tokengate_stats,
        abi_probe: u64,
    }

    impl StatsNext {
        pub(crate) fn new(v1: tokengate_stats) -> StatsNext {
            StatsNext {
                v1,
                abi_probe: u64::MAX,
            }
        }
    }

    /// `tokengate_event` with one more field at its end.
    #[repr(C)]
    pub(crate) struct EventNext {
        v1: tokengate_event,
        abi_probe: u64,
    }

    impl EventNext {
        pub(crate) fn new(v1: tokengate_event) -> EventNext {
            EventNext {
                v1,
                abi_probe: u64::MAX,
            }
        }
    }
}

/// A setter the next version might add (a program built against the current header never calls
/// it).
///
/// # Safety
///
/// - `builder` is NULL or a live builder not in use by another thread.
/// - `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_set_abi_probe(
    builder: *mut tokengate_client_builder,
    value: u64,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    boundary::ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let builder = unsafe { boundary::arg_mut(builder, "builder") }?;
        builder.abi_probe = value;
        Ok(())
    })
}

/// The probe build calls itself the next minor version.
mod version {
    use super::{TOKENGATE_VERSION_MAJOR, TOKENGATE_VERSION_MINOR, TOKENGATE_VERSION_PATCH};

    pub(crate) const TEXT: &std::ffi::CStr = c"0.3.0";
    pub(crate) const NUMBERS: (u32, u32, u32) = (
        TOKENGATE_VERSION_MAJOR,
        TOKENGATE_VERSION_MINOR + 1,
        TOKENGATE_VERSION_PATCH,
    );
}
