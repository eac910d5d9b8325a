//! The SQLite connection pool that runs statements off the async workers. It is shared with the
//! microservices, so it lives in [`mythoughts_common::db`]; re-exported here under its old path.

pub use mythoughts_common::db::{DEFAULT_POOL_SIZE, Db, DbError};
