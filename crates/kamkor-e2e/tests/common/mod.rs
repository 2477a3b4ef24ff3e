//! The harness shared by the headless-browser journeys (`tests/browser.rs`,
//! `tests/accounts.rs`): chromedriver, the real server over a fresh SQLite database (profile
//! `tzhs-kg`), browser sessions, screenshots and small page helpers.
//!
//! A journey runs only when `KAMKOR_CHROMEDRIVER` names a chromedriver binary; otherwise it
//! says so and passes. `KAMKOR_CHROMIUM` names the browser (default `/usr/bin/chromium`);
//! `KAMKOR_SCREENSHOTS` a folder where the screenshots are written. Everything talks to
//! 127.0.0.1 only.

// Each test file uses its own part of the harness.
#![allow(dead_code)]

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use kamkor_app::{App, AppConfig, NewUser};
use kamkor_store::Store;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long one element or one page load may take.
pub const STEP: Duration = Duration::from_secs(15);

pub type R<T> = Result<T, String>;

/// Attach what was being done to an error.
pub trait Ctx<T> {
    fn ctx(self, what: impl Display) -> R<T>;
}

impl<T, E: Display> Ctx<T> for Result<T, E> {
    fn ctx(self, what: impl Display) -> R<T> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

/// `ensure!(cond, "format", args…)`: return the message as an error when `cond` is false.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}
pub(crate) use ensure;

// ---------------------------------------------------------------- chromedriver

/// A running chromedriver; dropping it (also on a panic) ends it and the browsers it started.
pub struct Driver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Driver {
    pub fn start(binary: &str, log: PathBuf) -> R<Driver> {
        let port = free_port()?;
        let out = std::fs::File::create(&log).ctx("create the chromedriver log")?;
        let err = out.try_clone().ctx("chromedriver log")?;
        let mut cmd = Command::new(binary);
        cmd.arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        #[cfg(unix)]
        {
            // A process group of its own, so that the browsers it starts end with it.
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let child = cmd.spawn().ctx(format!("start chromedriver {binary}"))?;
        Ok(Driver { child, port, log })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Wait until chromedriver answers `GET /status` with `"ready":true` (at most 15 s).
    pub async fn wait_ready(&mut self) -> R<()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "chromedriver exited at start ({status}):\n{}",
                    self.log_tail()
                ));
            }
            if let Ok(Ok(body)) =
                tokio::time::timeout(Duration::from_secs(2), http_get(self.port, "/status")).await
                && body.replace(' ', "").contains("\"ready\":true")
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "chromedriver did not answer on port {} within 15 s:\n{}",
                    self.port,
                    self.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            // The group chromedriver leads (its id is the group's), with any browser left over.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port on 127.0.0.1: bind to port 0, note the port, let it go.
pub fn free_port() -> R<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").ctx("bind 127.0.0.1:0")?;
    let port = l.local_addr().ctx("local address")?.port();
    drop(l);
    Ok(port)
}

/// A bare HTTP GET on 127.0.0.1; returns the body. chromedriver keeps the connection open
/// whatever the request says, so the body ends where `Content-Length` says.
pub async fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).await?;
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())
                    .flatten()
            });
            if n == 0 || length.is_some_and(|len| body.len() >= len) {
                return Ok(body.to_string());
            }
        }
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed before the end of the answer",
            ));
        }
    }
}

// ---------------------------------------------------------------- the server

pub struct Server {
    pub base: String,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The real router on 127.0.0.1 over a fresh SQLite database (profile `tzhs-kg`), with the
/// given users created first.
pub async fn start_server(users: &[NewUser]) -> R<Server> {
    let dir = tempfile::tempdir().ctx("temp dir")?;
    let store = Store::open_sqlite_dir(dir.path())
        .await
        .ctx("open SQLite")?;
    store.migrate().await.ctx("migrate")?;
    let profile_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles/tzhs-kg");
    let profile = kamkor_app::load_profile(&profile_dir).ctx("load profile tzhs-kg")?;
    let app = App::new(store, profile, AppConfig::default());
    app.bind_profile().await.ctx("bind profile")?;
    for u in users {
        app.create_user("e2e", u)
            .await
            .ctx(format!("create the user {}", u.login))?;
    }
    let router = kamkor_web::router(app, kamkor_web::WebConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .ctx("bind the server")?;
    let base = format!("http://{}", listener.local_addr().ctx("server address")?);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            eprintln!("server stopped: {e}");
        }
    });
    Ok(Server {
        base,
        task,
        _dir: dir,
    })
}

// ---------------------------------------------------------------- running a journey

/// What a journey gets: the server's address, the screenshots, and fresh browser sessions.
pub struct Env {
    pub base: String,
    pub shots: Shots,
    driver: Driver,
    work: PathBuf,
    sessions: Mutex<Vec<Client>>,
    _server: Server,
}

impl Env {
    /// A new browser session with a profile of its own (cookies are not shared between
    /// sessions); it is closed when the journey ends.
    pub async fn browser(&self, name: &str) -> R<Client> {
        let dir = self.work.join(format!("chromium-{name}"));
        std::fs::create_dir_all(&dir).ctx(format!("create {}", dir.display()))?;
        let client = connect(&self.driver, &dir).await?;
        self.sessions
            .lock()
            .map_err(|_| "browser sessions: poisoned lock".to_string())?
            .push(client.clone());
        Ok(client)
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn close_browsers(&self) -> R<()> {
        let sessions = std::mem::take(
            &mut *self
                .sessions
                .lock()
                .map_err(|_| "browser sessions: poisoned lock".to_string())?,
        );
        let mut result = Ok(());
        for c in sessions {
            if let Err(e) = c.close().await {
                result = Err(format!("close a browser session: {e}"));
            }
        }
        result
    }
}

/// Run a journey against a fresh server holding `users`, within `limit` (browser start
/// included). Skipped (and passing) when `KAMKOR_CHROMEDRIVER` is not set; panics with the
/// error and the end of the chromedriver log when the journey fails or runs out of time.
pub async fn run_journey<F>(limit: Duration, users: Vec<NewUser>, journey: F)
where
    F: AsyncFnOnce(&Env) -> R<()>,
{
    let Some(chromedriver) = std::env::var("KAMKOR_CHROMEDRIVER")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        eprintln!(
            "skipped: set KAMKOR_CHROMEDRIVER to a chromedriver binary to run the browser tests"
        );
        return;
    };
    // Declared first, dropped last: the browser profiles outlive the driver that uses them.
    let work = tempfile::tempdir().expect("temp dir");
    let shots = Shots::from_env().expect("screenshot folder");
    let mut driver =
        Driver::start(&chromedriver, work.path().join("chromedriver.log")).expect("chromedriver");
    driver.wait_ready().await.expect("chromedriver ready");
    let server = start_server(&users).await.expect("server");
    eprintln!(
        "server at {}, chromedriver at {}",
        server.base,
        driver.url()
    );
    let env = Env {
        base: server.base.clone(),
        shots,
        driver,
        work: work.path().to_path_buf(),
        sessions: Mutex::new(Vec::new()),
        _server: server,
    };
    let started = Instant::now();
    let outcome = tokio::time::timeout(limit, async {
        let result = journey(&env).await;
        let closed = env.close_browsers().await;
        result.and(closed)
    })
    .await;
    eprintln!("journey took {:.1} s", started.elapsed().as_secs_f64());
    let log = env.driver.log_tail();
    // The server stops and chromedriver ends (with its browsers) before the profiles go.
    drop(env);
    drop(work);
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{e}\n-- chromedriver log (end) --\n{log}"),
        Err(_) => {
            panic!("the journey took longer than {limit:?}\n-- chromedriver log (end) --\n{log}")
        }
    }
}

// ---------------------------------------------------------------- browser helpers

/// A browser session over `driver`: headless Chromium with its own profile folder.
pub async fn connect(driver: &Driver, profile_dir: &Path) -> R<Client> {
    let binary = std::env::var("KAMKOR_CHROMIUM")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/usr/bin/chromium".into());
    let args = [
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--no-first-run".into(),
        "--disable-dev-shm-usage".into(),
        "--window-size=1280,1600".into(),
        format!("--user-data-dir={}", profile_dir.display()),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "args": args, "binary": binary }),
    );
    ClientBuilder::rustls()
        .ctx("rustls connector")?
        .capabilities(caps)
        .connect(&driver.url())
        .await
        .ctx(format!("start a browser session ({binary})"))
}

pub async fn find(c: &Client, css: &str) -> R<Element> {
    c.wait()
        .at_most(STEP)
        .for_element(Locator::Css(css))
        .await
        .ctx(format!("find `{css}` on {}", here(c).await))
}

/// Whether `css` finds something on the current page (no waiting).
pub async fn exists(c: &Client, css: &str) -> R<bool> {
    Ok(!c
        .find_all(Locator::Css(css))
        .await
        .ctx(format!("look for `{css}`"))?
        .is_empty())
}

pub async fn here(c: &Client) -> String {
    c.current_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_else(|e| format!("<no url: {e}>"))
}

pub async fn text(c: &Client, css: &str) -> R<String> {
    find(c, css)
        .await?
        .text()
        .await
        .ctx(format!("text of `{css}`"))
}

pub async fn value(c: &Client, css: &str) -> R<String> {
    Ok(find(c, css)
        .await?
        .prop("value")
        .await
        .ctx(format!("value of `{css}`"))?
        .unwrap_or_default())
}

/// Whether the checkbox `css` finds is ticked.
pub async fn checked(c: &Client, css: &str) -> R<bool> {
    Ok(find(c, css)
        .await?
        .prop("checked")
        .await
        .ctx(format!("checked state of `{css}`"))?
        .is_some_and(|v| v == "true"))
}

pub async fn fill(c: &Client, css: &str, v: &str) -> R<()> {
    let e = find(c, css).await?;
    e.clear().await.ctx(format!("clear `{css}`"))?;
    e.send_keys(v).await.ctx(format!("type into `{css}`"))
}

/// Set an input's value by script: typing into a date input depends on the browser's locale.
pub async fn set_value(c: &Client, css: &str, v: &str) -> R<()> {
    let e = find(c, css).await?;
    let arg = serde_json::to_value(&e).ctx("element reference")?;
    c.execute(
        "arguments[0].value = arguments[1]; \
         arguments[0].dispatchEvent(new Event('input', {bubbles: true})); \
         arguments[0].dispatchEvent(new Event('change', {bubbles: true}));",
        vec![arg, json!(v)],
    )
    .await
    .ctx(format!("set `{css}` to {v}"))?;
    Ok(())
}

pub async fn choose(c: &Client, css: &str, v: &str) -> R<()> {
    find(c, css)
        .await?
        .select_by_value(v)
        .await
        .ctx(format!("choose {v} in `{css}`"))
}

/// Click what `css` finds when no new page is expected (a checkbox, a radio button).
pub async fn click(c: &Client, css: &str) -> R<()> {
    find(c, css)
        .await?
        .click()
        .await
        .ctx(format!("click `{css}`"))
}

/// Tick the checkbox `css` finds (clicking it unless it is ticked already).
pub async fn tick(c: &Client, css: &str) -> R<()> {
    if !checked(c, css).await? {
        click(c, css).await?;
    }
    ensure!(
        checked(c, css).await?,
        "`{css}` is not ticked after a click"
    );
    Ok(())
}

pub async fn goto(c: &Client, url: &str) -> R<()> {
    c.goto(url).await.ctx(format!("open {url}"))
}

/// Click what `css` finds and wait until the next page has loaded (at most 15 s).
pub async fn click_and_wait(c: &Client, css: &str) -> R<()> {
    let e = find(c, css).await?;
    c.execute("window.__kamkorOldPage = true;", vec![])
        .await
        .ctx("mark the page")?;
    e.click().await.ctx(format!("click `{css}`"))?;
    let deadline = Instant::now() + STEP;
    loop {
        let loaded = c
            .execute(
                "return window.__kamkorOldPage !== true && document.readyState === 'complete';",
                vec![],
            )
            .await;
        if matches!(loaded, Ok(Value::Bool(true))) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no new page within {STEP:?} after clicking `{css}` (still on {})",
                here(c).await
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The path of the current page.
pub async fn path(c: &Client) -> R<String> {
    Ok(c.current_url().await.ctx("current url")?.path().to_string())
}

/// `/persons/<uuid>` → the uuid, when it looks like one.
pub fn id_after(path: &str, prefix: &str) -> Option<String> {
    let id = path.strip_prefix(prefix)?;
    let shape = id.len() == 36
        && id.char_indices().all(|(i, ch)| {
            if [8, 13, 18, 23].contains(&i) {
                ch == '-'
            } else {
                ch.is_ascii_hexdigit()
            }
        });
    shape.then(|| id.to_string())
}

pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Screenshots: always taken (so that taking them is tested), written only to
/// `KAMKOR_SCREENSHOTS` when it is set.
pub struct Shots {
    dir: Option<PathBuf>,
}

impl Shots {
    pub fn from_env() -> R<Shots> {
        let dir = std::env::var_os("KAMKOR_SCREENSHOTS")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from);
        if let Some(d) = &dir {
            std::fs::create_dir_all(d).ctx(format!("create {}", d.display()))?;
            eprintln!("screenshots go to {}", d.display());
        } else {
            eprintln!("KAMKOR_SCREENSHOTS not set: screenshots are taken but not written");
        }
        Ok(Shots { dir })
    }

    pub async fn take(&self, c: &Client, name: &str) -> R<()> {
        let png = c.screenshot().await.ctx(format!("screenshot {name}"))?;
        ensure!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "screenshot {name} is not a PNG"
        );
        if let Some(d) = &self.dir {
            let file = d.join(format!("{name}.png"));
            std::fs::write(&file, &png).ctx(format!("write {}", file.display()))?;
        }
        Ok(())
    }

    /// Like [`Shots::take`], but of the whole page: the window grows to the page's height
    /// (at most 8000 px) for the screenshot and gets its size back afterwards.
    pub async fn take_full(&self, c: &Client, name: &str) -> R<()> {
        let (width, height) = c.get_window_size().await.ctx("window size")?;
        let extra = c
            .execute(
                "return Math.max(0, document.documentElement.scrollHeight - window.innerHeight);",
                vec![],
            )
            .await
            .ctx("page height")?
            .as_u64()
            .unwrap_or(0);
        if extra == 0 {
            return self.take(c, name).await;
        }
        let tall = (height + extra).min(8000);
        let to_u32 = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        c.set_window_size(to_u32(width), to_u32(tall))
            .await
            .ctx("grow the window")?;
        let taken = self.take(c, name).await;
        c.set_window_size(to_u32(width), to_u32(height))
            .await
            .ctx("give the window its size back")?;
        taken
    }
}
