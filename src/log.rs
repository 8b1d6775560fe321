//! `-v` / `-vv` tracing to stderr. Callers pass only redacted values (see `token::redact`).

#[derive(Debug, Clone, Copy, Default)]
pub struct Log {
    pub level: u8,
}

impl Log {
    pub fn new(level: u8) -> Log {
        Log { level }
    }

    /// `-v`: decisions and requests.
    pub fn info(&self, message: impl FnOnce() -> String) {
        if self.level >= 1 {
            eprintln!("idtok: {}", message());
        }
    }

    /// `-vv`: headers and details.
    pub fn debug(&self, message: impl FnOnce() -> String) {
        if self.level >= 2 {
            eprintln!("idtok:   {}", message());
        }
    }

    /// Always shown: something the user should know although the command succeeds.
    pub fn warn(&self, message: &str) {
        eprintln!("idtok: warning: {message}");
    }
}
