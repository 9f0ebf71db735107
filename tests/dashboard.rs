//! The supervisors' dashboard: its embedded files are served as they should be, and the page
//! works in a real headless Chromium (Debian's `chromium`, driven by playwright-core from
//! `tests/dashboard/check.mjs`) against a real gateway and Redis: it signs in and shows the
//! queues, updates within 2 s of a ticket being posted, shows a breach, marks a provisional
//! deadline (暂定), switches to English, and leaves screenshots under
//! `target/dashboard-artifacts/`. A second run (`tests/dashboard/scale.mjs`) uses a warning
//! scale unlike the default one and a breach that raises a ticket one band: the page shows the
//! configured levels and, apart from them, the bands, and counts the running breach in the
//! 24-hour SLA compliance.
//!
//! The browser test never skips: without Chromium or the Node packages it fails and says to run
//! `scripts/ensure-chromium.sh`, so a machine that cannot run it is noticed rather than passed.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use support::{PARTNER, RedisServer, SUPERVISOR, TestApp, ticket};

/// Accept within 4 s (warning at half, so a ticket is "at risk" for two seconds), every other
/// clock an hour: a breach shows up on the page a few seconds after a ticket arrives. First
/// contact is one working hour on `allday` (every minute is working time) whose holiday data, in
/// `holidays`, stops the year before: a provisional deadline, warned after 7 s.
fn fast_policy(holidays: &Path) -> String {
    format!(
        r#"
[sla]
mover_max_sleep_ms = 100

[sla.calendars.allday]
time_zone = "Asia/Shanghai"
working_hours = ["00:00-24:00"]
weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
holidays_dir = "{}"

[[sla.policies]]
name = "drill"
accept = {{ seconds = 4 }}
warn_at = [0.5]
on_breach = ["notify", "overdue"]

[[sla.policies]]
name = "provisional drill"
first_contact = {{ working_hours = 1, calendar = "allday" }}
warn_at = [0.002]

[[sla.policies]]
name = "the rest"
first_contact = {{ hours = 1 }}
resolve = {{ hours = 1 }}
follow_up = {{ hours = 1 }}
"#,
        holidays.display()
    )
}

/// A holidays directory whose data stops the year before this one.
fn holidays_until_last_year() -> tempfile::TempDir {
    use chrono::Datelike;
    let dir = tempfile::tempdir().expect("tempdir");
    let year = chrono::Utc::now().year() - 1;
    std::fs::write(
        dir.path().join(format!("{year}.json")),
        format!(
            r#"{{"year": {year}, "papers": [], "days": [{{"name": "test", "date": "{year}-01-01", "isOffDay": true}}]}}"#
        ),
    )
    .expect("write holiday file");
    dir
}

const CHROMIUM: &str = "/usr/bin/chromium";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `target/dashboard-artifacts/` (or under `CARGO_TARGET_DIR`), created.
fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let dir = target.join("dashboard-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/dashboard-artifacts");
    dir
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_from_the_binary() {
    let redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;

    let page = app
        .http
        .get(format!("{}/dashboard", app.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert!(page.headers().contains_key("content-security-policy"));
    let html = page.text().await.expect("body");
    assert!(html.contains("<html lang=\"zh-CN\">"), "Chinese first");
    assert!(html.contains("/dashboard/assets/chart.umd.js"));

    for (file, kind) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("chart.umd.js", "text/javascript; charset=utf-8"),
    ] {
        let url = format!("{}/dashboard/assets/{file}", app.base);
        let res = app.http.get(&url).send().await.expect("sent");
        assert_eq!(res.status(), 200, "{file}");
        assert_eq!(res.headers()["content-type"], kind, "{file}");
        assert_eq!(res.headers()["cache-control"], "no-cache", "{file}");
        let etag = res.headers()["etag"].to_str().expect("etag").to_string();
        assert!(!res.bytes().await.expect("body").is_empty());
        let again = app
            .http
            .get(&url)
            .header("if-none-match", &etag)
            .send()
            .await
            .expect("sent");
        assert_eq!(again.status(), 304, "{file} revalidates");
    }

    for bad in ["nope.js", "..%2Fmod.rs", "index.html", "VENDORED.md"] {
        let res = app
            .http
            .get(format!("{}/dashboard/assets/{bad}", app.base))
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), 404, "{bad}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let problem: Value = res.json().await.expect("problem");
        assert_eq!(problem["type"], "/problems/not-found");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_headless_chromium() {
    require_browser();
    let redis = RedisServer::start();
    let holidays = holidays_until_last_year();
    let app = TestApp::spawn_with(&redis, &fast_policy(holidays.path())).await;
    // One ticket before the page opens, so there is a queue to show at sign-in.
    let res = app.post("/v1/tickets", PARTNER, &ticket("DASH-0")).await;
    assert_eq!(res.status(), 201);

    run_script(&app, "check.mjs", "dashboard.png").await;
    app.stop().await;
}

/// Issue 16: a gateway whose warning scale is not the default one (five levels, red highest, a
/// custom `watch`), and whose accept clock breaches after 2 s and raises the ticket one band.
/// The page must show the configured levels (names, order, colours from the gateway) and the
/// priority bands apart from them, and count the running breach in the 24-hour compliance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_configured_scale_and_bands_apart_from_levels() {
    require_browser();
    let redis = RedisServer::start();
    let config = r#"
[classify]
warning_levels = ["red", "orange", "yellow", "watch", "none"]

[sla]
mover_max_sleep_ms = 100

[[sla.policies]]
name = "drill"
accept = { seconds = 2 }
on_breach = ["raise_band", "notify"]

[[sla.policies]]
name = "the rest"
first_contact = { hours = 1 }
resolve = { hours = 1 }
follow_up = { hours = 1 }
"#;
    let app = TestApp::spawn_with(&redis, config).await;
    let res = app.post("/v1/tickets", PARTNER, &ticket("SCALE-0")).await;
    assert_eq!(res.status(), 201);
    run_script(&app, "scale.mjs", "dashboard-scale.png").await;
    app.stop().await;
}

/// Fails, saying what to run, unless Chromium, Node.js and the Node packages are there.
fn require_browser() {
    let modules = root().join("tests/dashboard/node_modules/playwright-core");
    let node_ok = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        Path::new(CHROMIUM).exists() && modules.exists() && node_ok,
        "the browser test needs {CHROMIUM}, Node.js and tests/dashboard/node_modules \
         (chromium: {}, node: {node_ok}, node_modules: {}): run scripts/ensure-chromium.sh",
        Path::new(CHROMIUM).exists(),
        modules.exists(),
    );
}

/// Runs `tests/dashboard/<script>` against `app` and asserts that it passed and left its
/// screenshot `target/dashboard-artifacts/<png>`.
async fn run_script(app: &TestApp, script: &str, png: &str) {
    let screenshot = artifacts_dir().join(png);
    let _ = std::fs::remove_file(&screenshot);
    let run = tokio::process::Command::new("node")
        .arg(root().join("tests/dashboard").join(script))
        .arg(&app.base)
        .arg(SUPERVISOR)
        .arg(&screenshot)
        .arg(PARTNER)
        .current_dir(root().join("tests/dashboard"))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .unwrap_or_else(|_| panic!("{script} finished within 3 minutes"))
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{script} stdout:\n{stdout}\n{script} stderr:\n{stderr}");
    assert!(
        output.status.success(),
        "the browser check {script} failed ({}):\n{stderr}",
        output.status
    );
    assert!(
        screenshot.exists(),
        "no screenshot at {}",
        screenshot.display()
    );
}
