//! Headless-browser journey through the accounts-and-access pages (issue 3) of the real Kamkor
//! server (router, SQLite database, profile `tzhs-kg`), driven over WebDriver by fantoccini.
//!
//! An administrator enrols the second factor the application forces on them, registers a
//! specialist (first with a wrong INN and an end of validity in the past), reads the one-time
//! password; the specialist logs in with it and must change it; the administrator, in another
//! browser, suspends the account, which ends the specialist's session and refuses the next
//! login; an anonymous visitor asks for access on the public form and the administrator
//! approves the request.
//!
//! Runs only when `KAMKOR_CHROMEDRIVER` names a chromedriver binary (see `tests/common`):
//!
//!     KAMKOR_CHROMEDRIVER=$(command -v chromedriver) KAMKOR_SCREENSHOTS=/tmp/kamkor-shots \
//!         cargo test -p kamkor-e2e --test accounts -- --nocapture

mod common;

use std::time::{Duration, Instant};

use common::{
    Ctx, Env, R, checked, choose, click_and_wait, ensure, exists, fill, find, here, id_after, path,
    run_journey, set_value, text, tick, value,
};
use fantoccini::Client;
use kamkor_app::NewUser;
use kamkor_domain::policy::Role;

const ADMIN_LOGIN: &str = "admin.e2e";
const ADMIN_PASSWORD: &str = "горный ручей у Чолпон-Аты";
const ADMIN_NAME: &str = "Бекова Нургуль Алмазбековна";

/// Ак-Суйский район (Иссык-Кульская область) and its family and child support department.
const TERRITORY: &str = "41702205000000";
const ORGANISATION: &str = "opsd-41702205000000";
const ORGANISATION_NAME: &str = "Отдел поддержки семьи и детей Ак-Суйского района";
/// An organisation's INN: 0, the registration date 15.03.2012, a serial.
const ORG_INN: &str = "01503201210123";
/// The same with month 13: no such registration date (Kyrgyz INNs carry no check digit).
const BAD_ORG_INN: &str = "01513201210123";
const ORG_ADDRESS: &str = "с. Теплоключенка, ул. Ленина, 12";

const WORKER_NAME: &str = "Осмонова Жылдыз Бакытовна";
/// Female, born 15.05.1985.
const WORKER_PIN: &str = "11505198500123";
const WORKER_POSITION: &str = "Ведущий специалист";
const WORKER_PASSWORD: &str = "весенний ветер над Иссык-Кулем";
const SUSPEND_REASON: &str = "Отпуск по уходу за ребёнком";

const REQUESTER_NAME: &str = "Токтогулов Бакыт Асанович";
/// Male, born 02.07.1990.
const REQUESTER_PIN: &str = "20207199000456";
/// First digit 3: neither sex.
const BAD_REQUESTER_PIN: &str = "30207199000456";
const REQUESTER_POSITION: &str = "Специалист по социальной работе";
const REQUESTER_CONTACT: &str = "+996 555 123 456";

/// The whole journey, browser start included (a wait for the next TOTP step included).
const JOURNEY: Duration = Duration::from_secs(180);

/// The administrator of the journey: whole country, no second factor yet.
fn administrator() -> NewUser {
    let today = kamkor_store::now_utc().date();
    NewUser {
        login: ADMIN_LOGIN.into(),
        full_name: ADMIN_NAME.into(),
        roles: vec![Role::Administrator],
        organisation: "mtsom-ais-admin".into(),
        scope_territory: None,
        valid_from: today,
        valid_until: Some(today + time::Duration::days(30)),
        password: Some(ADMIN_PASSWORD.into()),
    }
}

fn iso(d: time::Date) -> String {
    kamkor_domain::records::format_date(d)
}

/// Text a person can read: some Cyrillic and no raw code (`date_in_past`, `id_bad_date`).
fn is_russian(s: &str) -> bool {
    let cyrillic = s.chars().any(|c| ('\u{0400}'..='\u{04FF}').contains(&c));
    let raw_code = s
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|w| w.contains('_') && w.chars().any(|c| c.is_ascii_alphabetic()));
    cyrillic && !raw_code
}

// ---------------------------------------------------------------- the second factor

/// The authenticator app of the journey: codes of steps never used before (the server refuses
/// a step already used), within the ±1 step the server accepts.
struct Authenticator {
    secret: String,
    last: Option<i64>,
}

impl Authenticator {
    async fn code(&mut self) -> R<String> {
        let deadline = Instant::now() + Duration::from_secs(65);
        loop {
            let now = kamkor_app::totp::step_of(time::OffsetDateTime::now_utc());
            let step = self.last.map_or(now, |last| (last + 1).max(now));
            if step <= now + 1 {
                let code = kamkor_app::totp::code_at(&self.secret, step)
                    .ok_or_else(|| format!("the key {:?} is not base32", self.secret))?;
                self.last = Some(step);
                return Ok(code);
            }
            ensure!(Instant::now() < deadline, "no fresh TOTP step within 65 s");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

// ---------------------------------------------------------------- page helpers

/// Fill the login form of the current page and send it.
async fn log_in(c: &Client, login: &str, password: &str, code: Option<&str>) -> R<()> {
    let form = "form[action='/login']";
    fill(c, &format!("{form} input[name='login']"), login).await?;
    fill(c, &format!("{form} input[name='password']"), password).await?;
    if let Some(code) = code {
        fill(c, &format!("{form} input[name='code']"), code).await?;
    }
    click_and_wait(c, &format!("{form} button[type='submit']")).await
}

async fn log_out(c: &Client) -> R<()> {
    click_and_wait(c, "header form[action='/logout'] button[type='submit']").await?;
    ensure!(
        path(c).await? == "/login",
        "after logging out: at {}",
        here(c).await
    );
    Ok(())
}

async fn expect_path(c: &Client, want: &str, what: &str) -> R<()> {
    let got = path(c).await?;
    if got == want {
        return Ok(());
    }
    let errors = text(c, "div.errors").await.unwrap_or_default();
    Err(format!(
        "{what}: expected {want}, at {} (errors on the page: {errors:?})",
        here(c).await
    ))
}

async fn expect_h1(c: &Client, want: &str, what: &str) -> R<()> {
    let h1 = text(c, "main h1").await?;
    ensure!(
        h1.starts_with(want),
        "{what}: expected the heading {want:?}, got {h1:?} at {}",
        here(c).await
    );
    Ok(())
}

/// The error shown next to the field whose wrapper is `#f-<id>`: present and in Russian.
async fn field_error(c: &Client, id: &str, what: &str) -> R<String> {
    let e = text(c, &format!("#f-{id} .field-error"))
        .await
        .ctx(format!("{what}: no error next to the field {id}"))?;
    ensure!(
        is_russian(&e),
        "{what}: the error next to {id} is not plain Russian: {e:?}"
    );
    Ok(e)
}

/// The registration data of the user form (the administrator's and the public one).
struct Applicant<'a> {
    full_name: &'a str,
    national_id: &'a str,
    position: &'a str,
    org_inn: &'a str,
    contact: Option<&'a str>,
}

impl Applicant<'_> {
    /// The typed fields and the chosen ones, as the form must keep them after an error.
    fn fields(&self) -> Vec<(&'static str, &str)> {
        let mut f = vec![
            ("organisation", ORGANISATION),
            ("org_inn", self.org_inn),
            ("territorial_unit", TERRITORY),
            ("org_address", ORG_ADDRESS),
            ("full_name", self.full_name),
            ("national_id", self.national_id),
            ("position", self.position),
            ("scope", TERRITORY),
        ];
        if let Some(contact) = self.contact {
            f.push(("contact", contact));
        }
        f
    }
}

/// Fill the user form `form` (a CSS selector) as a person would: choose, type, tick.
async fn fill_user_form(c: &Client, form: &str, a: &Applicant<'_>) -> R<()> {
    choose(
        c,
        &format!("{form} select[name='organisation']"),
        ORGANISATION,
    )
    .await?;
    fill(c, &format!("{form} input[name='org_inn']"), a.org_inn).await?;
    choose(
        c,
        &format!("{form} select[name='territorial_unit']"),
        TERRITORY,
    )
    .await?;
    fill(c, &format!("{form} input[name='org_address']"), ORG_ADDRESS).await?;
    fill(c, &format!("{form} input[name='full_name']"), a.full_name).await?;
    fill(
        c,
        &format!("{form} input[name='national_id']"),
        a.national_id,
    )
    .await?;
    fill(c, &format!("{form} input[name='position']"), a.position).await?;
    if let Some(contact) = a.contact {
        fill(c, &format!("{form} input[name='contact']"), contact).await?;
    }
    tick(
        c,
        &format!("{form} input[name='roles'][value='specialist']"),
    )
    .await?;
    choose(c, &format!("{form} select[name='scope']"), TERRITORY).await
}

/// After an error: everything typed or chosen is still there.
async fn expect_kept(c: &Client, form: &str, a: &Applicant<'_>, what: &str) -> R<()> {
    for (name, want) in a.fields() {
        let got = value(c, &format!("{form} [name='{name}']")).await?;
        ensure!(
            got == want,
            "{what}: after the error the field {name} holds {got:?}, expected what was typed: {want:?}"
        );
    }
    ensure!(
        checked(
            c,
            &format!("{form} input[name='roles'][value='specialist']")
        )
        .await?,
        "{what}: after the error the role «Специалист» is no longer ticked"
    );
    Ok(())
}

/// The login and one-time password of the page shown once after an account was made.
async fn credentials(c: &Client, what: &str) -> R<(String, String)> {
    expect_h1(c, "Учётная запись создана", what).await?;
    let login = text(c, "#new-login").await?.trim().to_string();
    let password = text(c, "#one-time-password").await?.trim().to_string();
    ensure!(
        login.len() >= 3 && password.len() >= 10,
        "{what}: login {login:?} or one-time password {password:?} missing"
    );
    Ok((login, password))
}

// ---------------------------------------------------------------- the journey

async fn accounts_journey(env: &Env) -> R<()> {
    let shots = &env.shots;
    let today = kamkor_store::now_utc().date();

    // ---- The administrator logs in and must enrol the second factor first.
    let a = env.browser("admin").await?;
    a.goto(&env.url("/login"))
        .await
        .ctx("open the login page")?;
    log_in(&a, ADMIN_LOGIN, ADMIN_PASSWORD, None).await?;
    expect_path(
        &a,
        "/account/second-factor",
        "administrator without a second factor",
    )
    .await?;
    expect_h1(&a, "Второй фактор", "second-factor page").await?;
    let forced = text(&a, "main p.flash").await?;
    ensure!(
        forced.contains("обязателен второй фактор"),
        "second-factor page: no word that it is mandatory ({forced:?})"
    );
    find(&a, "main div.qr svg")
        .await
        .ctx("second-factor page: no QR code")?;
    shots
        .take_full(&a, "acc-01-second-factor-enrolment")
        .await?;
    // The key as shown for typing into an app by hand (groups of four).
    let shown: String = text(&a, "main section.card code")
        .await?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let hidden = value(
        &a,
        "form[action='/account/second-factor'] input[name='secret']",
    )
    .await?;
    ensure!(
        shown == hidden,
        "second-factor page: the key shown ({shown:?}) is not the one the form sends ({hidden:?})"
    );
    let mut app = Authenticator {
        secret: shown,
        last: None,
    };
    let code = app.code().await?;
    fill(
        &a,
        "form[action='/account/second-factor'] input[name='code']",
        &code,
    )
    .await?;
    click_and_wait(
        &a,
        "form[action='/account/second-factor'] button[type='submit']",
    )
    .await?;
    expect_path(&a, "/account", "after enrolling the second factor").await?;
    let account = text(&a, "main").await?;
    ensure!(
        account.contains("Второй фактор подключён"),
        "my account: the second factor is not shown as on"
    );
    shots.take_full(&a, "acc-02-account").await?;

    // ---- Administration → users → register a user.
    click_and_wait(&a, "header nav a[href='/admin']").await?;
    expect_path(&a, "/admin", "administration").await?;
    expect_h1(&a, "Администрирование", "administration").await?;
    shots.take_full(&a, "acc-03-admin-home").await?;
    click_and_wait(&a, "main a[href='/admin/users']").await?;
    expect_path(&a, "/admin/users", "users").await?;
    let list = text(&a, "main table").await?;
    ensure!(
        list.contains(ADMIN_NAME),
        "users list: the administrator is not listed"
    );
    shots.take_full(&a, "acc-04-users-list").await?;
    click_and_wait(&a, "main a.button[href='/admin/users/new']").await?;
    expect_path(&a, "/admin/users/new", "registration form").await?;
    let form = "form[action='/admin/users/new']";
    let valid_from = value(&a, &format!("{form} input[name='valid_from']")).await?;
    ensure!(
        valid_from == iso(today),
        "registration form: validity starts {valid_from:?}, expected today"
    );
    let worker = Applicant {
        full_name: WORKER_NAME,
        national_id: WORKER_PIN,
        position: WORKER_POSITION,
        org_inn: BAD_ORG_INN,
        contact: None,
    };
    fill_user_form(&a, form, &worker).await?;
    let yesterday = iso(today - time::Duration::days(1));
    set_value(&a, &format!("{form} input[name='valid_until']"), &yesterday).await?;
    shots.take_full(&a, "acc-05-user-new-form").await?;
    click_and_wait(&a, &format!("{form} p.actions button.primary")).await?;

    // A wrong INN and an end of validity in the past: errors next to both, all kept.
    expect_path(&a, "/admin/users/new", "registration with bad values").await?;
    let summary = text(&a, "main div.errors").await?;
    ensure!(
        is_russian(&summary),
        "registration with bad values: the summary is not plain Russian: {summary:?}"
    );
    field_error(&a, "org-inn", "registration with a wrong INN").await?;
    let past = field_error(&a, "valid-until", "registration ending yesterday").await?;
    ensure!(
        past.contains("прошла"),
        "registration ending yesterday: the error does not say the date has passed: {past:?}"
    );
    expect_kept(&a, form, &worker, "registration with bad values").await?;
    let kept_until = value(&a, &format!("{form} input[name='valid_until']")).await?;
    ensure!(
        kept_until == yesterday,
        "registration with bad values: the end of validity is {kept_until:?}, typed {yesterday:?}"
    );
    shots.take_full(&a, "acc-06-user-new-errors").await?;

    // Corrected: the account is made and its one-time password shown once.
    fill(&a, &format!("{form} input[name='org_inn']"), ORG_INN).await?;
    let until = iso(today + time::Duration::days(180));
    set_value(&a, &format!("{form} input[name='valid_until']"), &until).await?;
    click_and_wait(&a, &format!("{form} p.actions button.primary")).await?;
    let (worker_login, one_time) = credentials(&a, "registration").await?;
    let card_link = find(
        &a,
        "main a.button[href^='/admin/users/']:not([href$='/new'])",
    )
    .await
    .ctx("registration result: no link to the card")?
    .attr("href")
    .await
    .ctx("card link")?
    .unwrap_or_default();
    let worker_id = id_after(&card_link, "/admin/users/")
        .ok_or_else(|| format!("registration result: odd card link {card_link:?}"))?;
    shots.take_full(&a, "acc-07-user-created").await?;
    log_out(&a).await?;

    // ---- The new user logs in with the one-time password and must change it.
    log_in(&a, &worker_login, &one_time, None).await?;
    expect_path(&a, "/password", "first login with the one-time password").await?;
    let notice = text(&a, "main p.notice").await?;
    ensure!(
        notice.contains("временному паролю"),
        "forced password change: no word why ({notice:?})"
    );
    shots.take_full(&a, "acc-08-password-change-forced").await?;
    // Nothing else opens until the password is changed: no menu, and typing an address
    // leads back here.
    ensure!(
        !exists(&a, "header nav").await?,
        "forced password change: the menu leads nowhere and must not be shown"
    );
    a.goto(&env.url("/persons"))
        .await
        .ctx("open the search before the password is changed")?;
    expect_path(&a, "/password", "search before the password is changed").await?;
    let pw = "form[action='/password']";
    fill(&a, &format!("{pw} input[name='current']"), &one_time).await?;
    fill(&a, &format!("{pw} input[name='new']"), WORKER_PASSWORD).await?;
    fill(&a, &format!("{pw} input[name='repeat']"), WORKER_PASSWORD).await?;
    click_and_wait(&a, &format!("{pw} button[type='submit']")).await?;
    expect_path(&a, "/", "after changing the password").await?;
    expect_h1(&a, "Моя работа", "after changing the password").await?;
    shots.take_full(&a, "acc-09-user-home").await?;

    // ---- The administrator, in another browser, suspends the account.
    let b = env.browser("admin-2").await?;
    b.goto(&env.url("/login"))
        .await
        .ctx("open the login page")?;
    let code = app.code().await?;
    log_in(&b, ADMIN_LOGIN, ADMIN_PASSWORD, Some(&code)).await?;
    expect_path(&b, "/", "administrator's second login").await?;
    shots.take_full(&b, "acc-10-admin-landing").await?;
    click_and_wait(&b, "header nav a[href='/admin']").await?;
    click_and_wait(&b, "main a[href='/admin/users']").await?;
    click_and_wait(
        &b,
        &format!("main table a[href='/admin/users/{worker_id}']"),
    )
    .await?;
    expect_path(&b, &format!("/admin/users/{worker_id}"), "user card").await?;
    expect_h1(&b, WORKER_NAME, "user card").await?;
    let card = text(&b, "main").await?;
    for (what, want) in [
        ("organisation", ORGANISATION_NAME),
        ("INN", ORG_INN),
        ("position", WORKER_POSITION),
        ("login", worker_login.as_str()),
    ] {
        ensure!(
            card.contains(want),
            "user card: the {what} {want:?} is not shown"
        );
    }
    ensure!(
        !card.contains(ORGANISATION) && !card.contains(&one_time),
        "user card: shows the organisation code or the one-time password"
    );
    shots.take_full(&b, "acc-11-user-card").await?;
    let suspend = "form:has(input[name='action'][value='suspend'])";
    fill(
        &b,
        &format!("{suspend} textarea[name='reason']"),
        SUSPEND_REASON,
    )
    .await?;
    click_and_wait(&b, &format!("{suspend} button[type='submit']")).await?;
    expect_path(&b, &format!("/admin/users/{worker_id}"), "after suspending").await?;
    let flash = text(&b, "main p.flash").await?;
    ensure!(
        flash.contains("приостановлен"),
        "after suspending: the confirmation is {flash:?}"
    );
    find(&b, "main h1 .badge.state-suspended")
        .await
        .ctx("after suspending: the card is not marked suspended")?;
    shots.take_full(&b, "acc-12-user-suspended").await?;

    // ---- The suspended user's next page load goes to the login page; logging in is refused.
    a.refresh().await.ctx("reload the user's home page")?;
    expect_path(&a, "/login", "the suspended user's next page").await?;
    let ended = text(&a, "main div.errors").await?;
    ensure!(
        ended.contains("Сеанс завершён"),
        "the suspended user's next page: no word that the session ended ({ended:?})"
    );
    log_in(&a, &worker_login, WORKER_PASSWORD, None).await?;
    expect_path(&a, "/login", "login of the suspended user").await?;
    let refused = text(&a, "main div.errors").await?;
    ensure!(
        is_russian(&refused) && refused.contains("приостановлен"),
        "login of the suspended user: the refusal does not say the access is suspended: {refused:?}"
    );
    ensure!(
        !exists(&a, "header form[action='/logout']").await?,
        "login of the suspended user: a session was opened"
    );
    shots.take_full(&a, "acc-13-login-refused").await?;

    // ---- An anonymous visitor asks for access (first with a PIN of neither sex).
    click_and_wait(&a, "main a[href='/request-access']").await?;
    expect_path(&a, "/request-access", "public request form").await?;
    expect_h1(&a, "Заявка на доступ", "public request form").await?;
    let rq = "form[action='/request-access']";
    ensure!(
        !exists(
            &a,
            &format!("{rq} input[name='roles'][value='administrator']")
        )
        .await?,
        "public request form: the administrator role is offered"
    );
    let requester = Applicant {
        full_name: REQUESTER_NAME,
        national_id: BAD_REQUESTER_PIN,
        position: REQUESTER_POSITION,
        org_inn: ORG_INN,
        contact: Some(REQUESTER_CONTACT),
    };
    fill_user_form(&a, rq, &requester).await?;
    shots.take_full(&a, "acc-14-request-form").await?;
    click_and_wait(&a, &format!("{rq} p.actions button.primary")).await?;
    expect_path(&a, "/request-access", "request with a bad PIN").await?;
    let pin_error = field_error(&a, "national-id", "request with a bad PIN").await?;
    ensure!(
        pin_error.contains("Первая цифра"),
        "request with a bad PIN: the error does not point at the first digit: {pin_error:?}"
    );
    expect_kept(&a, rq, &requester, "request with a bad PIN").await?;
    shots.take_full(&a, "acc-15-request-errors").await?;
    fill(
        &a,
        &format!("{rq} input[name='national_id']"),
        REQUESTER_PIN,
    )
    .await?;
    click_and_wait(&a, &format!("{rq} p.actions button.primary")).await?;
    expect_h1(&a, "Заявка принята", "request sent").await?;
    shots.take_full(&a, "acc-16-request-sent").await?;

    // ---- The administrator sees the request and approves it.
    click_and_wait(&b, "header nav a[href='/admin']").await?;
    let pending = text(&b, "main p.notice")
        .await
        .ctx("administration: no notice of the pending request")?;
    ensure!(
        pending.contains("заявки"),
        "administration: the notice is {pending:?}"
    );
    click_and_wait(&b, "main a[href='/admin/requests']").await?;
    expect_path(&b, "/admin/requests", "requests list").await?;
    let row = find(&b, "main table a[href^='/admin/requests/']")
        .await
        .ctx("requests list: no request")?;
    let name = row.text().await.ctx("request row")?;
    ensure!(
        name == REQUESTER_NAME,
        "requests list: the request is from {name:?}"
    );
    shots.take_full(&b, "acc-17-requests-list").await?;
    click_and_wait(&b, "main table a[href^='/admin/requests/']").await?;
    let request = text(&b, "main").await?;
    for (what, want) in [
        ("PIN", REQUESTER_PIN),
        ("contact", REQUESTER_CONTACT),
        ("organisation", ORGANISATION_NAME),
    ] {
        ensure!(
            request.contains(want),
            "request card: the {what} {want:?} is not shown"
        );
    }
    shots.take_full(&b, "acc-18-request-card").await?;
    click_and_wait(&b, "main form[action$='/approve'] button[type='submit']").await?;
    let (new_login, new_password) = credentials(&b, "approval").await?;
    shots.take_full(&b, "acc-19-request-approved").await?;
    click_and_wait(&b, "main a.button.secondary[href='/admin/users']").await?;
    let users = text(&b, "main table").await?;
    ensure!(
        users.contains(REQUESTER_NAME) && users.contains(&new_login),
        "users list: the approved requester {new_login} is not listed"
    );
    ensure!(
        !users.contains(&new_password),
        "users list: shows a one-time password"
    );
    eprintln!(
        "accounts journey: registered {worker_login}, suspended it, approved the request of {new_login}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrator_registers_suspends_and_approves_access() {
    run_journey(JOURNEY, vec![administrator()], accounts_journey).await;
}
