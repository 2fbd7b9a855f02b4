//! How a program's result becomes its exit status.

use std::process::ExitCode;

/// Success, or the error's whole chain printed as one clean line on stderr
/// (`error: what failed: why`) and a failing status. The chain can hold a
/// peer's words, so control characters are replaced before printing.
pub fn exit(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!(
                "error: {}",
                sprijin_proto::text::clean_line(&format!("{e:#}"))
            );
            ExitCode::FAILURE
        }
    }
}

/// Like [`exit`], for a program whose work says whether it succeeded:
/// `Ok(false)` (something failed or was denied, and was already told) is a
/// failing status without another line.
pub fn exit_with(result: anyhow::Result<bool>) -> ExitCode {
    exit(result.map(|ok| {
        if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }))
}
