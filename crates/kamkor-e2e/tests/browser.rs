//! Headless-browser journeys through the real Kamkor server (router, SQLite database, profile
//! `tzhs-kg`), driven over WebDriver by fantoccini.
//!
//! Runs only when `KAMKOR_CHROMEDRIVER` names a chromedriver binary; otherwise it says so and
//! passes. `KAMKOR_CHROMIUM` names the browser (default `/usr/bin/chromium`);
//! `KAMKOR_SCREENSHOTS` a folder where a PNG of every main page is written.
//!
//!     KAMKOR_CHROMEDRIVER=$(command -v chromedriver) KAMKOR_SCREENSHOTS=/tmp/kamkor-shots \
//!         cargo test -p kamkor-e2e -- --nocapture

mod common;

use std::time::Duration;

use common::{
    Ctx, R, STEP, Shots, choose, click, click_and_wait, ensure, exists, fill, find, goto, here,
    id_after, path, run_journey, set_value, text, url_encode, value,
};
use fantoccini::{Client, Locator};
use kamkor_app::NewUser;
use kamkor_domain::policy::Role;

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

/// The whole journey, browser start included.
const JOURNEY: Duration = Duration::from_secs(120);

/// The specialist of the journey (whole country, valid for 30 days).
fn specialist() -> NewUser {
    let today = kamkor_store::now_utc().date();
    NewUser {
        login: LOGIN.into(),
        full_name: "Айгуль Специалистова".into(),
        roles: vec![Role::Specialist],
        organisation: String::new(),
        scope_territory: None,
        valid_from: today,
        valid_until: Some(today + time::Duration::days(30)),
        password: Some(PASSWORD.into()),
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
    case_work_journey(c, base, shots, &case_id).await
}

/// Journey 1, continued (issue 5): the worker starts the initial assessment, completes it, adds
/// a circumstance and sees the plan generated with the rule named on each activity.
async fn case_work_journey(c: &Client, base: &str, shots: &Shots, case_id: &str) -> R<()> {
    let card = format!("{base}/cases/{case_id}");
    goto(c, &card).await?;
    click_and_wait(
        c,
        "#lifecycle form input[value='start_initial_assessment'] ~ button",
    )
    .await
    .ctx("case card: no button to start the initial assessment")?;
    let stage = text(c, "#lifecycle dl.facts dd strong").await?;
    ensure!(
        stage == "Первичная оценка",
        "case card: the stage reads {stage:?} after starting the initial assessment"
    );
    goto(c, &format!("{card}/assessments/new?form=initial")).await?;
    choose(c, "select[name='extra.immediate_danger']", "false").await?;
    choose(c, "select[name='extra.risk_level']", "medium").await?;
    choose(c, "select[name='extra.needs_comprehensive']", "true").await?;
    shots.take(c, "09-initial-assessment").await?;
    click_and_wait(c, "button[value='complete']").await?;
    ensure!(
        path(c).await? == format!("/cases/{case_id}"),
        "completing the assessment: expected the case card, got {} (errors: {:?})",
        here(c).await,
        text(c, "div.errors").await.unwrap_or_default()
    );
    // Both parents abroad (seed 000 §20): the plan is generated at once.
    // The form is open while the case has no circumstance yet.
    if !exists(c, "#circumstances details.add[open]").await? {
        click(c, "#circumstances details.add summary").await?;
    }
    choose(c, "#circumstances select[name='kind']", "C01").await?;
    click_and_wait(c, "#circumstances form button.primary").await?;
    let plan = text(c, "#plan-child_protection")
        .await
        .ctx("case card: no child protection plan")?;
    ensure!(
        plan.contains("Правило") && plan.contains("ожидает утверждения"),
        "case card: the plan does not name its rules or its draft version: {plan:.300}"
    );
    let why = text(c, "#plan-child_protection td.why").await?;
    ensure!(
        why.contains("за рубежом") || why.contains("Оценка") || why.contains("Первичная"),
        "case card: the first activity does not explain itself: {why:?}"
    );
    shots.take(c, "10-case-plan").await?;
    eprintln!("journey 1: case {case_id} assessed, plan generated");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn social_worker_registers_a_child_and_opens_a_case() {
    run_journey(JOURNEY, vec![specialist()], async |env| {
        let client = env.browser("worker").await?;
        social_worker_journey(&client, &env.base, &env.shots).await
    })
    .await;
}
