//! The demo's fixed seed data: two users and five thoughts with fixed ids and timestamps, so that the
//! monolith and the microservices start from identical rows and their responses can be compared.

use time::macros::datetime;

use crate::model::Timestamp;

/// Every seed user's password.
pub const SEED_PASSWORD: &str = "password";

/// A user present on first start.
#[derive(Debug, Clone, Copy)]
pub struct SeedUser {
    /// Fixed id.
    pub id: i64,
    /// Login name.
    pub username: &'static str,
    /// Fixed creation time.
    pub creation: Timestamp,
}

/// A thought present on first start.
#[derive(Debug, Clone, Copy)]
pub struct SeedThought {
    /// Fixed id.
    pub id: i64,
    /// Author (one of [`USERS`]).
    pub username: &'static str,
    /// The text.
    pub text: &'static str,
    /// Fixed posting time.
    pub timestamp: Timestamp,
}

impl SeedThought {
    /// The thought as the APIs return it.
    pub fn to_thought(&self) -> crate::model::Thought {
        crate::model::Thought {
            id: self.id,
            username: self.username.to_owned(),
            text: self.text.to_owned(),
            timestamp: self.timestamp,
        }
    }
}

/// The seed users: `bruce` (id 1) and `stephen` (id 2), both with [`SEED_PASSWORD`].
pub const USERS: [SeedUser; 2] = [
    SeedUser {
        id: 1,
        username: "bruce",
        creation: Timestamp::from_const(datetime!(2019-05-07 13:40:00)),
    },
    SeedUser {
        id: 2,
        username: "stephen",
        creation: Timestamp::from_const(datetime!(2019-05-07 13:41:00)),
    },
];

/// The seed thoughts: ids 1–3 by bruce, 4–5 by stephen, in posting order.
pub const THOUGHTS: [SeedThought; 5] = [
    SeedThought {
        id: 1,
        username: "bruce",
        text: "Gamma ray test in a few minutes. What could possibly go wrong?",
        timestamp: Timestamp::from_const(datetime!(2019-05-07 13:47:34)),
    },
    SeedThought {
        id: 2,
        username: "bruce",
        text: "Note to self: buy stretchier trousers.",
        timestamp: Timestamp::from_const(datetime!(2019-05-07 13:52:10)),
    },
    SeedThought {
        id: 3,
        username: "bruce",
        text: "Feeling a bit green today.",
        timestamp: Timestamp::from_const(datetime!(2019-05-07 14:05:51)),
    },
    SeedThought {
        id: 4,
        username: "stephen",
        text: "Bent time this morning and was still late for breakfast.",
        timestamp: Timestamp::from_const(datetime!(2019-05-08 09:12:20)),
    },
    SeedThought {
        id: 5,
        username: "stephen",
        text: "Whoever keeps borrowing my cloak: please bring it back.",
        timestamp: Timestamp::from_const(datetime!(2019-05-08 10:30:45)),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_shape() {
        assert_eq!(THOUGHTS.iter().map(|t| t.id).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
        assert!(THOUGHTS[..3].iter().all(|t| t.username == "bruce"));
        assert!(THOUGHTS[3..].iter().all(|t| t.username == "stephen"));
        assert!(THOUGHTS.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
        assert_eq!(THOUGHTS[0].timestamp.to_string(), "2019-05-07T13:47:34");
        assert!(
            THOUGHTS
                .iter()
                .all(|t| t.text.chars().count() <= crate::model::MAX_THOUGHT_CHARS)
        );
        assert_eq!(USERS.map(|u| u.username), ["bruce", "stephen"]);
    }
}
