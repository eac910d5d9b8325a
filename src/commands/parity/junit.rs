//! `strangler parity --junit`: a [`Run`] as JUnit XML, written by [`quick_junit`] (the
//! data model and writer CI tools share) rather than by format strings of our own. What
//! goes in is limited to the attributes of the JUnit schema CI servers read (Jenkins'
//! `junit-10.xsd`, checked in under tests/junit and validated against in
//! tests/it/parity_reports.rs), and to characters XML 1.0 can carry ([`xml_text`]).

use super::report::{Record, ReplayVerdict, Run};
use crate::parity::Outcome;

impl Run {
    /// JUnit XML, written by [`quick_junit`] (its writer escapes markup; [`xml_text`]
    /// first replaces what XML 1.0 cannot carry at all): a `<testsuite>` per route, a
    /// `<testcase name="NAME" classname="ROUTE">` per request ([`Record::name`]: the
    /// corpus's `name`, or `METHOD path (line N)`); a mismatch, a
    /// resolved divergence or an error is a `<failure type="mismatch|resolved|error">` whose
    /// text is [`Record::detail`] and the corpus line, a skipped request
    /// `<skipped message="why"/>`, an expected divergence a passing case with its reason in
    /// `<system-out>`. Only the attributes
    /// of the JUnit schema CI servers read (Jenkins' `junit-10.xsd`): the corpus file and
    /// line are in the failure text, not in `file`/`line` attributes.
    pub fn junit(&self) -> Result<String, quick_junit::SerializeError> {
        let mut report = quick_junit::Report::new("strangler parity");
        report.set_time(self.records.iter().map(|r| r.elapsed).sum());
        for route in &self.routes {
            let mut suite = quick_junit::TestSuite::new(xml_text(&route.name));
            let records: Vec<&Record> = self.records.iter().filter(|r| r.route == route.name).collect();
            suite.set_time(records.iter().map(|r| r.elapsed).sum());
            for record in records {
                suite.add_test_case(self.junit_case(record, &route.name));
            }
            report.add_test_suite(suite);
        }
        report.to_string()
    }

    /// The `<testcase>` of one request.
    fn junit_case(&self, record: &Record, route: &str) -> quick_junit::TestCase {
        use quick_junit::{NonSuccessKind, TestCaseStatus};
        let status = match (&record.verdict, record.outcome()) {
            (ReplayVerdict::Skipped(why), _) => {
                let mut status = TestCaseStatus::skipped();
                status.set_message(xml_text(why));
                status
            }
            (_, Some(Outcome::Expected)) => {
                let reason = record.expect.as_ref().map_or("", |e| e.reason.as_str());
                return self.junit_passing_case(record, route, reason);
            }
            (verdict, Some(outcome @ (Outcome::Mismatch | Outcome::Resolved | Outcome::Error))) => {
                let message = match verdict {
                    ReplayVerdict::Compared { .. } if outcome == Outcome::Resolved => format!(
                        "the stated divergence no longer occurs: {}",
                        record.expect.as_ref().map_or("", |e| e.reason.as_str())
                    ),
                    ReplayVerdict::Compared { diffs, truncated, .. } => format!(
                        "{} difference(s){}",
                        diffs.len(),
                        if *truncated { " and more" } else { "" }
                    ),
                    ReplayVerdict::Error(why) | ReplayVerdict::Skipped(why) => why.clone(),
                };
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status
                    .set_type(outcome.as_str())
                    .set_message(xml_text(&message))
                    .set_description(xml_text(&format!(
                        "{}corpus: {}:{}\n",
                        record.detail(),
                        self.corpus,
                        record.line
                    )));
                status
            }
            _ => TestCaseStatus::success(),
        };
        let mut case = quick_junit::TestCase::new(xml_text(&record.name()), status);
        case.set_classname(xml_text(route)).set_time(record.elapsed);
        case
    }

    /// An expected divergence: a passing case, its reason in `<system-out>`.
    fn junit_passing_case(&self, record: &Record, route: &str, reason: &str) -> quick_junit::TestCase {
        let mut case = quick_junit::TestCase::new(xml_text(&record.name()), quick_junit::TestCaseStatus::success());
        case.set_classname(xml_text(route))
            .set_time(record.elapsed)
            .set_system_out(xml_text(&format!("expected divergence: {reason}")));
        case
    }
}

/// Text XML 1.0 can carry: the characters it has no place for (C0 controls other than
/// line feed; U+FFFE, U+FFFF) become U+FFFD, tab and carriage return a space, so a reader
/// sees that something was there ([`quick_junit::XmlString`] would drop the controls
/// silently and keep the other two, which no parser accepts).
pub fn xml_text(text: &str) -> quick_junit::XmlString {
    let safe: String = text
        .chars()
        .map(|c| match c {
            '\n' => c,
            // The writer's ANSI stripping would drop them, joining what they separated.
            '\t' | '\r' => ' ',
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => '\u{fffd}',
            c => c,
        })
        .collect();
    quick_junit::XmlString::new(safe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::parity::report::tests::run;

    #[test]
    fn junit_escapes_and_counts() {
        let xml = run().junit().unwrap();
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"), "{xml}");
        assert!(
            xml.contains("<testsuites name=\"strangler parity\" tests=\"5\" skipped=\"1\" failures=\"2\" errors=\"0\""),
            "{xml}"
        );
        assert!(
            xml.contains("<testsuite name=\"thoughts-api\" tests=\"4\" skipped=\"0\" errors=\"0\" failures=\"2\""),
            "{xml}"
        );
        assert!(
            xml.contains("name=\"GET /api/thoughts/?q=&quot;x&quot; (line 2)\""),
            "{xml}"
        );
        assert!(xml.contains("classname=\"thoughts-api\""), "{xml}");
        assert!(
            xml.contains("legacy &quot;a &lt;b&gt; &amp; &apos;c&apos;&quot; new &quot;\u{fffd}x&quot;"),
            "{xml}"
        );
        assert!(xml.contains("corpus: c.jsonl:2\n"), "{xml}");
        assert!(!xml.contains('\u{1}'));
        assert!(
            xml.contains("<failure message=\"new: timeout\" type=\"error\">"),
            "{xml}"
        );
        assert!(xml.contains("<skipped message=\"no new upstream\"/>"), "{xml}");
        assert_eq!(xml.matches("<testcase ").count(), 5);
        assert_eq!(xml.matches("</testcase>").count(), 3);
        // Only attributes of the JUnit schema.
        assert!(!xml.contains(" file=") && !xml.contains(" line="), "{xml}");
    }

    #[test]
    fn xml_text_replaces_what_xml_cannot_carry() {
        let text = |s: &str| xml_text(s).as_str().to_owned();
        assert_eq!(text("a&b<c>d\"e'f"), "a&b<c>d\"e'f", "markup is the writer's to escape");
        assert_eq!(text("x\ny\tz\r"), "x\ny z ");
        assert_eq!(
            text("\u{0}\u{1b}[31m\u{fffe}\u{ffff}é🦀"),
            "\u{fffd}\u{fffd}[31m\u{fffd}\u{fffd}é🦀"
        );
    }

    #[test]
    fn junit_of_odd_names_is_well_formed() {
        let mut run = run();
        let odd = "/a?x=<&>\"'\u{0}\u{7}\u{1b}[0m\u{fffe}\u{ffff}\u{fffd}\u{10ffff}]]>";
        for record in &mut run.records {
            record.path = odd.to_owned();
            record.route = "r<&\"'>\u{1}".to_owned();
        }
        run.routes[0].name = "r<&\"'>\u{1}".to_owned();
        let xml = run.junit().unwrap();
        let mut reader = quick_xml::Reader::from_str(&xml);
        let mut names = Vec::new();
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e))
                    if e.name().as_ref() == "testcase" =>
                {
                    let name = e.try_get_attribute("name").unwrap().unwrap();
                    let name = name.normalized_value(quick_xml::XmlVersion::Implicit1_0).unwrap();
                    names.push(name.into_owned());
                }
                Ok(_) => {}
                Err(e) => panic!("{e}: {xml}"),
            }
        }
        assert_eq!(names.len(), 5, "{xml}");
        assert_eq!(
            names[0],
            "GET /a?x=<&>\"'\\x{0}\\x{7}\\x{1b}[0m\u{fffd}\u{fffd}\u{fffd}\u{10ffff}]]> (line 1)"
        );
    }
}
