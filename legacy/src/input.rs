//! Request fields from the JSON body, the query string or a form, as Flask-RESTPlus read them. Every
//! MyThoughts API must read them alike, so [`Fields`] lives in [`mythoughts_common::input`]; re-exported here
//! under its old path.

pub use mythoughts_common::input::Fields;
