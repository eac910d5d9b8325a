//! The whole MyThoughts demo (monolith, services, proxy) behind the proxy, and flipping
//! the stages of its routes file.

use std::time::Duration;

use super::routes::with_stages;

/// How long a changed routes file may take to be in force in the demo.
pub const DEMO_RELOAD_WITHIN: Duration = Duration::from_secs(5);

/// The whole MyThoughts demo (monolith, services, proxy) on ephemeral loopback ports, its
/// data (SQLite, JWT keys, the routes copy) in a fresh temp dir. Keep the dir alive as long
/// as the demo; call `demo.shutdown()` at the end.
pub async fn start_demo() -> (tempfile::TempDir, mythoughts_demo::Demo) {
    let dir = tempfile::tempdir().unwrap();
    let demo = mythoughts_demo::Demo::start(mythoughts_demo::Options {
        routes: mythoughts_demo::repository_routes(),
        data_dir: dir.path().join("data"),
        placement: mythoughts_demo::Placement::Ephemeral,
        fast_passwords: true,
    })
    .await
    .unwrap_or_else(|e| panic!("the demo did not start: {e}"));
    (dir, demo)
}

/// Sets the stage of the named routes in the demo's routes file (write a temp file,
/// rename it over, as editors do) and waits until the proxy has that table in force.
/// Returns its version.
pub async fn set_stages(demo: &mythoughts_demo::Demo, stages: &[(&str, &str)]) -> String {
    let text = tokio::fs::read_to_string(&demo.routes).await.unwrap();
    let updated = with_stages(&text, stages);
    let version = strangler::config::version_of(&updated);
    let mut status = demo.proxy_state.subscribe();
    let tmp = demo.routes.with_file_name(".routes.toml.tmp");
    tokio::fs::write(&tmp, &updated).await.unwrap();
    tokio::fs::rename(&tmp, &demo.routes).await.unwrap();
    let seen = tokio::time::timeout(DEMO_RELOAD_WITHIN, status.wait_for(|s| s.version == version))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "stages {stages:?} (version {version}) not in force within {DEMO_RELOAD_WITHIN:?}; last status: {:?}",
                demo.proxy_state.subscribe().borrow()
            )
        })
        .expect("state dropped")
        .clone();
    assert_eq!(seen.last_error, None, "the flipped table was rejected");
    version
}
