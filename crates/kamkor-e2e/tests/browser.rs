//! Headless-browser journeys through the real Kamkor server (router, SQLite database, profile
//! `tzhs-kg`), driven over WebDriver by fantoccini.
//!
//! Runs only when `KAMKOR_CHROMEDRIVER` names a chromedriver binary; otherwise it says so and
//! passes. `KAMKOR_CHROMIUM` names the browser (default `/usr/bin/chromium`);
//! `KAMKOR_SCREENSHOTS` a folder where a PNG of every main page is written.
//!
//!     KAMKOR_CHROMEDRIVER=$(command -v chromedriver) KAMKOR_SCREENSHOTS=/tmp/kamkor-shots \
//!         cargo test -p kamkor-e2e -- --nocapture

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use kamkor_app::{App, AppConfig, NewUser};
use kamkor_domain::policy::Role;
use kamkor_store::Store;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LOGIN: &str = "socworker";
const PASSWORD: &str = "correct horse battery staple";
const SURNAME: &str = "Асанбеков";
const GIVEN_NAME: &str = "Нурлан";
const BIRTH_DATE: &str = "2015-03-09";
/// Ак-Суйский район (Иссык-Кульская область).
const TERRITORY: &str = "41702205000000";
/// First digit 1 means female: wrong for a boy born on 09.03.2015.
const WRONG_PIN: &str = "10903201500011";
const RIGHT_PIN: &str = "20903201500011";

/// How long one element or one page load may take.
const STEP: Duration = Duration::from_secs(15);
/// The whole journey, browser start included.
const JOURNEY: Duration = Duration::from_secs(120);

type R<T> = Result<T, String>;

/// Attach what was being done to an error.
trait Ctx<T> {
    fn ctx(self, what: impl Display) -> R<T>;
}

impl<T, E: Display> Ctx<T> for Result<T, E> {
    fn ctx(self, what: impl Display) -> R<T> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

// ---------------------------------------------------------------- chromedriver

/// A running chromedriver; dropping it (also on a panic) ends it and the browsers it started.
struct Driver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Driver {
    fn start(binary: &str, log: PathBuf) -> R<Driver> {
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

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Wait until chromedriver answers `GET /status` with `"ready":true` (at most 15 s).
    async fn wait_ready(&mut self) -> R<()> {
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

    fn log_tail(&self) -> String {
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
fn free_port() -> R<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").ctx("bind 127.0.0.1:0")?;
    let port = l.local_addr().ctx("local address")?.port();
    drop(l);
    Ok(port)
}

/// A bare HTTP GET on 127.0.0.1; returns the body. chromedriver keeps the connection open
/// whatever the request says, so the body ends where `Content-Length` says.
async fn http_get(port: u16, path: &str) -> std::io::Result<String> {
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

struct Server {
    base: String,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The real router over a fresh SQLite database, with one specialist (whole country).
async fn start_server() -> R<Server> {
    let dir = tempfile::tempdir().ctx("temp dir")?;
    let store = Store::open_sqlite_dir(dir.path())
        .await
        .ctx("open SQLite")?;
    store.migrate().await.ctx("migrate")?;
    let profile_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles/tzhs-kg");
    let profile = kamkor_app::load_profile(&profile_dir).ctx("load profile tzhs-kg")?;
    let app = App::new(store, profile, AppConfig::default());
    app.bind_profile().await.ctx("bind profile")?;
    let today = kamkor_store::now_utc().date();
    app.create_user(
        "e2e",
        &NewUser {
            login: LOGIN.into(),
            full_name: "Айгуль Специалистова".into(),
            roles: vec![Role::Specialist],
            organisation: String::new(),
            scope_territory: None,
            valid_from: today,
            valid_until: Some(today + time::Duration::days(30)),
            password: Some(PASSWORD.into()),
        },
    )
    .await
    .ctx("create the specialist")?;
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

// ---------------------------------------------------------------- browser helpers

async fn connect(driver: &Driver, profile_dir: &Path) -> R<Client> {
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

async fn find(c: &Client, css: &str) -> R<Element> {
    c.wait()
        .at_most(STEP)
        .for_element(Locator::Css(css))
        .await
        .ctx(format!("find `{css}` on {}", here(c).await))
}

async fn here(c: &Client) -> String {
    c.current_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_else(|e| format!("<no url: {e}>"))
}

async fn text(c: &Client, css: &str) -> R<String> {
    find(c, css)
        .await?
        .text()
        .await
        .ctx(format!("text of `{css}`"))
}

async fn value(c: &Client, css: &str) -> R<String> {
    Ok(find(c, css)
        .await?
        .prop("value")
        .await
        .ctx(format!("value of `{css}`"))?
        .unwrap_or_default())
}

async fn fill(c: &Client, css: &str, v: &str) -> R<()> {
    let e = find(c, css).await?;
    e.clear().await.ctx(format!("clear `{css}`"))?;
    e.send_keys(v).await.ctx(format!("type into `{css}`"))
}

/// Set an input's value by script: typing into a date input depends on the browser's locale.
async fn set_value(c: &Client, css: &str, v: &str) -> R<()> {
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

async fn choose(c: &Client, css: &str, v: &str) -> R<()> {
    find(c, css)
        .await?
        .select_by_value(v)
        .await
        .ctx(format!("choose {v} in `{css}`"))
}

async fn goto(c: &Client, url: &str) -> R<()> {
    c.goto(url).await.ctx(format!("open {url}"))
}

/// Click what `css` finds and wait until the next page has loaded (at most 15 s).
async fn click_and_wait(c: &Client, css: &str) -> R<()> {
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
async fn path(c: &Client) -> R<String> {
    Ok(c.current_url().await.ctx("current url")?.path().to_string())
}

/// `/persons/<uuid>` → the uuid, when it looks like one.
fn id_after(path: &str, prefix: &str) -> Option<String> {
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

fn url_encode(s: &str) -> String {
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
struct Shots {
    dir: Option<PathBuf>,
}

impl Shots {
    fn from_env() -> R<Shots> {
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

    async fn take(&self, c: &Client, name: &str) -> R<()> {
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
}

// ---------------------------------------------------------------- the journeys

/// Journey 1: a social worker logs in, registers a boy (first with a PIN of the wrong sex, which
/// the form must explain and keep everything typed), finds him by the start of his surname and
/// opens a case for him.
async fn social_worker_journey(c: &Client, base: &str, shots: &Shots) -> R<()> {
    // Login.
    goto(c, &format!("{base}/login")).await?;
    shots.take(c, "01-login").await?;
    fill(c, "input[name='login']", LOGIN).await?;
    fill(c, "input[name='password']", PASSWORD).await?;
    click_and_wait(c, "form[action='/login'] button[type='submit']").await?;
    let h1 = text(c, "main h1").await?;
    ensure!(
        h1 == "Моя работа",
        "after login: expected the home page, got h1 {h1:?} at {}",
        here(c).await
    );
    ensure!(path(c).await? == "/", "after login: at {}", here(c).await);
    shots.take(c, "02-home").await?;

    // Registration of a child, with a PIN that belongs to a girl.
    goto(c, &format!("{base}/register")).await?;
    let form = "form[action='/register']";
    fill(c, &format!("{form} input[name='child.surname']"), SURNAME).await?;
    fill(
        c,
        &format!("{form} input[name='child.given_name']"),
        GIVEN_NAME,
    )
    .await?;
    choose(c, &format!("{form} select[name='child.sex']"), "male").await?;
    set_value(
        c,
        &format!("{form} input[name='child.birth_date']"),
        BIRTH_DATE,
    )
    .await?;
    choose(
        c,
        &format!("{form} select[name='child.residence_territory']"),
        TERRITORY,
    )
    .await?;
    fill(
        c,
        &format!("{form} input[name='child.national_id']"),
        WRONG_PIN,
    )
    .await?;
    click_and_wait(c, &format!("{form} p.actions button.primary")).await?;

    ensure!(
        path(c).await? == "/register",
        "a PIN of the wrong sex was accepted: now at {}",
        here(c).await
    );
    let summary = text(c, "div.errors").await?;
    ensure!(
        summary.contains("не соответствует полу"),
        "the error summary does not explain the PIN/sex mismatch: {summary:?}"
    );
    let field_error = text(c, "#f-child-national-id .field-error").await.ctx(
        "the national-id field shows no error of its own (expected \"не соответствует полу\")",
    )?;
    ensure!(
        field_error.contains("не соответствует полу"),
        "the error next to the PIN field is {field_error:?}, expected it to say the PIN does not match the sex"
    );
    let kept = [
        ("child.surname", SURNAME),
        ("child.given_name", GIVEN_NAME),
        ("child.sex", "male"),
        ("child.birth_date", BIRTH_DATE),
        ("child.residence_territory", TERRITORY),
        ("child.national_id", WRONG_PIN),
    ];
    for (name, want) in kept {
        let got = value(c, &format!("{form} [name='{name}']")).await?;
        ensure!(
            got == want,
            "after the error the field {name} holds {got:?}, expected what was typed: {want:?}"
        );
    }
    shots.take(c, "03-register-errors").await?;

    // The right PIN: the child is registered and his card is shown.
    fill(
        c,
        &format!("{form} input[name='child.national_id']"),
        RIGHT_PIN,
    )
    .await?;
    click_and_wait(c, &format!("{form} p.actions button.primary")).await?;
    let card_path = path(c).await?;
    let person_id = match id_after(&card_path, "/persons/") {
        Some(id) => id,
        None => {
            let errors = text(c, "div.errors").await.unwrap_or_default();
            return Err(format!(
                "with the right PIN: expected the person card /persons/<uuid>, got {} (errors: {errors:?})",
                here(c).await
            ));
        }
    };
    let h1 = text(c, "main h1").await?;
    ensure!(
        h1.contains(SURNAME),
        "person card: h1 {h1:?} lacks the surname {SURNAME}"
    );
    shots.take(c, "04-person-card").await?;

    // Search by the first five letters of the surname.
    let prefix: String = SURNAME.chars().take(5).collect();
    goto(c, &format!("{base}/persons?q={}", url_encode(&prefix))).await?;
    let link = find(c, &format!("main table a[href='/persons/{person_id}']"))
        .await
        .ctx(format!("search for {prefix:?}: the child's row"))?;
    let name = link.text().await.ctx("name in the search row")?;
    ensure!(
        name.contains(SURNAME),
        "search for {prefix:?}: the row names {name:?}"
    );
    shots.take(c, "05-search").await?;

    // Open a case from the card.
    goto(c, &format!("{base}/persons/{person_id}")).await?;
    let open = c
        .wait()
        .at_most(STEP)
        .for_element(Locator::LinkText("Открыть случай"))
        .await
        .ctx("the person card has no link \"Открыть случай\"")?;
    open.click().await.ctx("click \"Открыть случай\"")?;
    let case_form = "form[action='/cases/new']";
    find(c, case_form).await?;
    let identified_on = value(c, &format!("{case_form} input[name='identified_on']")).await?;
    ensure!(
        identified_on.len() == 10 && identified_on.as_bytes()[4] == b'-',
        "case form: the date of identification is not prefilled ({identified_on:?})"
    );
    let territory = value(
        c,
        &format!("{case_form} select[name='identification_territory']"),
    )
    .await?;
    ensure!(
        territory == TERRITORY,
        "case form: the territory is {territory:?}, expected the child's {TERRITORY}"
    );
    let org = value(c, &format!("{case_form} select[name='responsible_org']")).await?;
    ensure!(
        !org.is_empty(),
        "case form: no responsible organisation prefilled"
    );
    shots.take(c, "06-case-form").await?;
    click_and_wait(c, &format!("{case_form} p.actions button.primary")).await?;
    let case_path = path(c).await?;
    let Some(case_id) = id_after(&case_path, "/cases/") else {
        let errors = text(c, "div.errors").await.unwrap_or_default();
        return Err(format!(
            "opening the case: expected the case card /cases/<uuid>, got {} (errors: {errors:?})",
            here(c).await
        ));
    };
    let h1 = text(c, "main h1").await?;
    let number = h1.strip_prefix("Случай").unwrap_or(&h1).trim();
    ensure!(
        number.starts_with("ТЖС-"),
        "case card: the number {number:?} (h1 {h1:?}) does not start with \"ТЖС-\""
    );
    find(c, &format!("main a[href='/persons/{person_id}']"))
        .await
        .ctx("case card: no link back to the child")?;
    shots.take(c, "07-case-card").await?;

    // Back home: the new case is among "my open cases".
    goto(c, &format!("{base}/")).await?;
    let mine = find(c, &format!("main a[href='/cases/{case_id}']"))
        .await
        .ctx("home page: the case just opened is not among my open cases")?;
    let shown = mine.text().await.ctx("case link text")?;
    ensure!(
        shown == number,
        "home page: the case link reads {shown:?}, expected {number:?}"
    );
    shots.take(c, "08-home-with-case").await?;
    eprintln!("journey 1: registered {SURNAME} {GIVEN_NAME} ({person_id}), opened case {number}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn social_worker_registers_a_child_and_opens_a_case() {
    let Some(chromedriver) = std::env::var("KAMKOR_CHROMEDRIVER")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        eprintln!(
            "skipped: set KAMKOR_CHROMEDRIVER to a chromedriver binary to run the browser tests"
        );
        return;
    };
    // Declared first, dropped last: the browser profile outlives the driver that uses it.
    let work = tempfile::tempdir().expect("temp dir");
    let browser_profile = work.path().join("chromium-profile");
    std::fs::create_dir_all(&browser_profile).expect("browser profile dir");
    let shots = Shots::from_env().expect("screenshot folder");
    let mut driver =
        Driver::start(&chromedriver, work.path().join("chromedriver.log")).expect("chromedriver");
    driver.wait_ready().await.expect("chromedriver ready");
    let server = start_server().await.expect("server");
    eprintln!(
        "server at {}, chromedriver at {}",
        server.base,
        driver.url()
    );

    let outcome = tokio::time::timeout(JOURNEY, async {
        let client = connect(&driver, &browser_profile).await?;
        let result = social_worker_journey(&client, &server.base, &shots).await;
        let closed = client.close().await.ctx("close the browser session");
        result.and(closed)
    })
    .await;
    let log = driver.log_tail();
    drop(server);
    drop(driver);
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{e}\n-- chromedriver log (end) --\n{log}"),
        Err(_) => {
            panic!("the journey took longer than {JOURNEY:?}\n-- chromedriver log (end) --\n{log}")
        }
    }
}
