//! An error and its causes on one line, `outer: cause: cause`, for logs and the command
//! line. Each cause is said once: most errors already put their source in their own message
//! (`connect: Connection refused (os error 111)`, `cannot read: {source}`), and printing
//! the chain as it is said that twice.

use std::error::Error;

/// `error`'s message, then each cause whose message is not already in the line.
pub fn of(error: &(dyn Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use std::io;

    #[derive(Debug, thiserror::Error)]
    enum Sent {
        #[error("connect: {0}")]
        Connect(#[source] io::Error),
        #[error("exchange failed")]
        Exchange(#[source] io::Error),
    }

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let refused = || io::Error::new(io::ErrorKind::ConnectionRefused, "Connection refused (os error 111)");
        assert_eq!(
            super::of(&Sent::Connect(refused())),
            "connect: Connection refused (os error 111)"
        );
        assert_eq!(
            super::of(&Sent::Exchange(refused())),
            "exchange failed: Connection refused (os error 111)"
        );
    }
}
