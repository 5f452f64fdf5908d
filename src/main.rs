fn main() -> std::process::ExitCode {
    restore_sigpipe();
    congruity::cli::main()
}

/// Output piped into `head` or a closed pager ends the process quietly, as for any Unix tool,
/// instead of a panic on the first print after the pipe closed (Rust ignores SIGPIPE by default).
#[cfg(unix)]
#[allow(unsafe_code)]
fn restore_sigpipe() {
    // SAFETY: called first in `main`, before any thread starts; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn restore_sigpipe() {}
