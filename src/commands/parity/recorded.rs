//! Recorded answers (`strangler parity --legacy-from FILE`): which recorded answer is
//! legacy's for a request, a file without any refused once, and answer headers the
//! recording redacted compared by presence only. Pure: the files are read by the corpus
//! loader, the answers asked for by the replay.

use std::path::Path;

use http::HeaderValue;

use super::corpus::CorpusRequest;
use crate::parity::Captured;

/// `--legacy-from` names a file without a single recorded answer: one clear refusal,
/// not an error per request.
pub fn no_answers_refused(file: &Path, recorded: &[CorpusRequest]) -> Result<(), String> {
    if recorded.iter().any(|request| request.recorded.is_some()) {
        return Ok(());
    }
    Err(format!(
        "--legacy-from {}: the file holds no recorded answers (a HAR entry's `response` with a \
         status, a JSON Lines `response`); record them with `[record] responses = true`",
        file.display()
    ))
}

/// Gives each request of `corpus` the answer recorded in `recorded` for the same method
/// and path (as written), each recorded answer used once, in order; a request with none
/// is left without (and reported as an error).
pub fn attach_recorded(corpus: &mut [CorpusRequest], recorded: Vec<CorpusRequest>) {
    let mut answers: Vec<Option<CorpusRequest>> = recorded.into_iter().map(Some).collect();
    for request in corpus {
        let found = answers.iter_mut().find(|a| {
            a.as_ref()
                .is_some_and(|a| a.recorded.is_some() && a.method == request.method && a.target == request.target)
        });
        request.recorded = found.and_then(Option::take).and_then(|a| a.recorded);
    }
}

/// The new answer with the headers the recording redacted (`set-cookie`, …) redacted
/// too: the recorded value is not the real one, so it cannot be compared, only whether the
/// header was sent.
pub fn redacted_like_recorded(recorded: &Captured, mut new: Captured) -> Captured {
    let redacted = HeaderValue::from_static(crate::parity::REDACTED);
    for name in recorded.headers.keys() {
        let values = recorded.headers.get_all(name);
        if values.iter().any(|v| v == redacted) && new.headers.contains_key(name) {
            new.headers.remove(name);
            for _ in values.iter() {
                new.headers.append(name.clone(), redacted.clone());
            }
        }
    }
    new
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_the_recording_redacted_are_compared_by_presence_only() {
        let mut recorded = Captured::default();
        recorded
            .headers
            .append("set-cookie", HeaderValue::from_static(crate::parity::REDACTED));
        recorded
            .headers
            .append("set-cookie", HeaderValue::from_static(crate::parity::REDACTED));
        recorded
            .headers
            .append("content-type", HeaderValue::from_static("text/plain"));
        let mut new = Captured::default();
        new.headers.append("set-cookie", HeaderValue::from_static("a=1"));
        new.headers.append("set-cookie", HeaderValue::from_static("b=2"));
        new.headers
            .append("content-type", HeaderValue::from_static("text/html"));
        let new = redacted_like_recorded(&recorded, new);
        let cookies: Vec<_> = new.headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, [crate::parity::REDACTED, crate::parity::REDACTED]);
        assert_eq!(
            new.headers["content-type"], "text/html",
            "other headers are compared as they are"
        );
    }
}
