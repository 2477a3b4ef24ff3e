//! Deterministic demo data: households of children (tzhs-kg) or released persons
//! (reentry-yugra) with relatives, families and cases in every status, spread over every
//! territory of the profile. The same seed gives the same registry, so screenshots, tests and
//! benchmarks are repeatable. Everything is written through the store's one write path.

use std::collections::HashMap;

use kamkor_domain::Sex;
use kamkor_domain::identifiers::{KgPin, NationalIdKind, Snils};
use kamkor_domain::policy::Role;
use kamkor_domain::profile::{FieldType, FormDef, Profile};
use kamkor_domain::records::{
    CaseData, CaseStatus, FamilyData, PersonData, PersonRole, RelationData, SubjectKind,
    case_number,
};
use kamkor_store::{NewCase, UserRow, now_utc};
use serde_json::{Map, Value};
use time::{Date, Duration};
use uuid::Uuid;

use crate::auth::{NewUser, hash_password, one_time_password};
use crate::{App, AppError, AppResult};

/// SplitMix64: small, fast and deterministic; demo data needs no cryptographic randomness.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    /// A deterministic UUID v7-shaped id (time part from `ms`).
    pub fn uuid(&mut self, ms: u64) -> Uuid {
        let hi = self.next_u64();
        let lo = self.next_u64();
        let mut b = [0u8; 16];
        b[0..6].copy_from_slice(&ms.to_be_bytes()[2..8]);
        b[6..8].copy_from_slice(&(hi as u16).to_be_bytes());
        b[8..16].copy_from_slice(&lo.to_be_bytes());
        b[6] = (b[6] & 0x0f) | 0x70;
        b[8] = (b[8] & 0x3f) | 0x80;
        Uuid::from_bytes(b)
    }
}

// Names: common Kyrgyz and Russian names, as written in Russian-language documents.
const KG_SURNAMES: &[&str] = &[
    "Асанов",
    "Усенов",
    "Токтогулов",
    "Джумабаев",
    "Абдыкадыров",
    "Маматов",
    "Осмонов",
    "Сыдыков",
    "Жумабеков",
    "Бекмуратов",
    "Калыков",
    "Мамытов",
    "Турдубаев",
    "Эсенбеков",
    "Садыков",
    "Алиев",
    "Акматов",
    "Кадыров",
    "Ибраимов",
    "Орозбаев",
    "Шаршенов",
    "Токтосунов",
    "Бакиров",
    "Исаков",
    "Болотбеков",
    "Абдраимов",
    "Жээнбеков",
    "Сатыбалдиев",
    "Курманов",
    "Мырзаканов",
    "Нурланов",
    "Табалдиев",
    "Кенжебаев",
    "Арстанбеков",
    "Чыныбаев",
    "Дуйшеев",
    "Иманалиев",
    "Качкынбаев",
    "Өмүрбеков",
    "Үсөнов",
    "Токтоматов",
    "Бейшеналиев",
    "Молдокулов",
    "Кожобеков",
    "Сулайманов",
];
const KG_MALE: &[&str] = &[
    "Айбек",
    "Нурлан",
    "Бакыт",
    "Эрлан",
    "Азамат",
    "Марат",
    "Тимур",
    "Санжар",
    "Бекзат",
    "Нурсултан",
    "Эмир",
    "Адилет",
    "Дастан",
    "Арсен",
    "Алмаз",
    "Улан",
    "Кубаныч",
    "Мирлан",
    "Жоомарт",
    "Талант",
    "Бактыбек",
    "Нурбек",
    "Элдияр",
    "Исмаил",
    "Ислам",
    "Байэль",
    "Айдар",
    "Чынгыз",
    "Өмүр",
    "Үмөт",
];
const KG_FEMALE: &[&str] = &[
    "Айгерим",
    "Айпери",
    "Нуриза",
    "Жылдыз",
    "Гүлнара",
    "Айжан",
    "Асель",
    "Бегимай",
    "Мээрим",
    "Айзада",
    "Нургуль",
    "Динара",
    "Элиза",
    "Каныкей",
    "Сезим",
    "Айнура",
    "Чолпон",
    "Бермет",
    "Жаннат",
    "Алтынай",
    "Назира",
    "Медина",
    "Айдана",
    "Аруузат",
    "Гүлзат",
    "Сабина",
    "Турсунай",
    "Айсулуу",
    "Нурайым",
    "Өмүркан",
];
const RU_SURNAMES: &[&str] = &[
    "Иванов",
    "Смирнов",
    "Кузнецов",
    "Попов",
    "Васильев",
    "Петров",
    "Соколов",
    "Михайлов",
    "Новиков",
    "Фёдоров",
    "Морозов",
    "Волков",
    "Алексеев",
    "Лебедев",
    "Семёнов",
    "Егоров",
    "Павлов",
    "Козлов",
    "Степанов",
    "Николаев",
    "Орлов",
    "Андреев",
    "Макаров",
    "Никитин",
    "Захаров",
    "Зайцев",
    "Соловьёв",
    "Борисов",
    "Яковлев",
    "Григорьев",
    "Романов",
    "Воробьёв",
    "Сергеев",
    "Кузьмин",
    "Фролов",
    "Александров",
    "Хабибуллин",
    "Гарипов",
    "Сафин",
    "Юсупов",
    "Шарипов",
    "Каримов",
    "Рахимов",
    "Мухаметов",
];
const RU_MALE: &[&str] = &[
    "Александр",
    "Сергей",
    "Дмитрий",
    "Андрей",
    "Алексей",
    "Максим",
    "Евгений",
    "Иван",
    "Михаил",
    "Артём",
    "Николай",
    "Владимир",
    "Павел",
    "Роман",
    "Денис",
    "Олег",
    "Виктор",
    "Игорь",
    "Юрий",
    "Антон",
    "Руслан",
    "Ринат",
    "Ильдар",
    "Тимур",
    "Константин",
    "Вадим",
    "Станислав",
    "Геннадий",
    "Виталий",
    "Кирилл",
];
const RU_FEMALE: &[&str] = &[
    "Елена",
    "Ольга",
    "Наталья",
    "Татьяна",
    "Ирина",
    "Светлана",
    "Анна",
    "Мария",
    "Екатерина",
    "Юлия",
    "Анастасия",
    "Дарья",
    "Марина",
    "Людмила",
    "Галина",
    "Валентина",
    "Оксана",
    "Алина",
    "Виктория",
    "Ксения",
    "Гульнара",
    "Альфия",
    "Лилия",
    "Надежда",
    "Любовь",
    "Вера",
    "Полина",
    "Софья",
    "Евгения",
    "Кристина",
];
/// Streets of Kyrgyz towns and villages.
const KG_STREETS: &[&str] = &[
    "Ленина",
    "Токтогула",
    "Манаса",
    "Советская",
    "Фрунзе",
    "Чуй",
    "Жибек Жолу",
    "Ибраимова",
    "Абдрахманова",
    "Курманжан Датки",
    "Гагарина",
    "Мира",
    "Садовая",
    "Школьная",
    "Набережная",
    "Молодёжная",
    "Центральная",
];
/// Streets of the towns of Khanty-Mansi Yugra.
const YUGRA_STREETS: &[&str] = &[
    "Ленина",
    "Мира",
    "Энгельса",
    "Чехова",
    "Гагарина",
    "Студенческая",
    "Комсомольская",
    "Пионерская",
    "Набережная",
    "Нефтяников",
    "Геологов",
    "Механизаторов",
    "Югорская",
    "Сургутская",
    "Дружбы Народов",
    "Рознина",
];

/// Street names for the profile's addresses.
fn streets(p: &Profile) -> &'static [&'static str] {
    if p.meta.subject == "child" {
        KG_STREETS
    } else {
        YUGRA_STREETS
    }
}

/// Russian-style patronymic from a father's given name (Айбек → Айбекович / Айбековна).
pub fn patronymic(father: &str, sex: Sex) -> String {
    let (stem, male, female) =
        if let Some(s) = father.strip_suffix("ий").filter(|s| !s.ends_with("тр")) {
            // Юрий → Юрьевич, Василий → Васильевич (but Дмитрий → Дмитриевич, below).
            (format!("{s}ь"), "евич", "евна")
        } else if let Some(s) = father.strip_suffix('й') {
            (s.to_string(), "евич", "евна")
        } else if let Some(s) = father.strip_suffix('ь') {
            (s.to_string(), "евич", "евна")
        } else if father.ends_with('а') || father.ends_with('я') {
            (father[..father.len() - 2].to_string(), "ич", "ична")
        } else {
            (father.to_string(), "ович", "овна")
        };
    match sex {
        Sex::Male => format!("{stem}{male}"),
        Sex::Female => format!("{stem}{female}"),
    }
}

/// Feminine surname form (Асанов → Асанова, Кадыров → Кадырова); others stay.
pub fn surname_for(surname: &str, sex: Sex) -> String {
    if sex == Sex::Female
        && (surname.ends_with("ов") || surname.ends_with("ев") || surname.ends_with("ин"))
    {
        format!("{surname}а")
    } else {
        surname.to_string()
    }
}

/// More given names for registry-sized generated data (the demo's own lists stay short).
const KG_MALE_MORE: &[&str] = &[
    "Акылбек",
    "Алтынбек",
    "Арген",
    "Аскар",
    "Бактияр",
    "Бекболот",
    "Бектур",
    "Болот",
    "Дамир",
    "Данияр",
    "Жаныбек",
    "Жаркын",
    "Замир",
    "Илияз",
    "Калыс",
    "Канат",
    "Куба",
    "Кутман",
    "Мелис",
    "Нурдин",
    "Нурислам",
    "Самат",
    "Сыймык",
    "Таалай",
    "Тилек",
    "Урмат",
    "Чоро",
    "Шамиль",
    "Эмил",
    "Эрмек",
    "Эрмат",
    "Айдин",
    "Атай",
    "Бекжан",
    "Даниэль",
    "Жоомарт",
    "Казат",
    "Медер",
    "Мирбек",
    "Нурали",
    "Омурбек",
    "Руслан",
    "Саматбек",
    "Тынчтык",
    "Улукбек",
    "Элмирбек",
    "Эрнис",
    "Азиз",
    "Арслан",
    "Байтемир",
    "Бекнур",
    "Эркин",
    "Жолдош",
    "Курманбек",
    "Мукай",
    "Нурэль",
    "Сагын",
    "Темирлан",
    "Уметали",
    "Белек",
    "Ырысбек",
    "Түгөлбай",
];
const KG_FEMALE_MORE: &[&str] = &[
    "Адинай",
    "Айдай",
    "Айканыш",
    "Айкөкүл",
    "Айнагүл",
    "Айсалкын",
    "Акмарал",
    "Алина",
    "Аделя",
    "Бактыгүл",
    "Бурул",
    "Венера",
    "Гулина",
    "Даяна",
    "Жазгүл",
    "Жамиля",
    "Жибек",
    "Зарина",
    "Зуура",
    "Камила",
    "Канышай",
    "Кундуз",
    "Малика",
    "Мариям",
    "Нарима",
    "Нурджан",
    "Перизат",
    "Раушан",
    "Салтанат",
    "Самара",
    "Тамара",
    "Толгонай",
    "Умут",
    "Чынара",
    "Шайыргүл",
    "Эльнура",
    "Эмилия",
    "Айым",
    "Асылзат",
    "Бегайым",
    "Гүлайым",
    "Дилноза",
    "Жумагүл",
    "Замира",
    "Каныкыз",
    "Күмүш",
    "Мунара",
    "Нуржамал",
    "Сайкал",
    "Таттыбүбү",
    "Урпия",
    "Элнура",
    "Аида",
    "Айчүрөк",
    "Бакыт",
    "Гүлмира",
    "Мээрбан",
    "Сүйүмкан",
];
const RU_MALE_MORE: &[&str] = &[
    "Аркадий",
    "Борис",
    "Валентин",
    "Виктор",
    "Геннадий",
    "Глеб",
    "Данила",
    "Егор",
    "Захар",
    "Игнат",
    "Кирилл",
    "Леонид",
    "Матвей",
    "Назар",
    "Олег",
    "Платон",
    "Родион",
    "Святослав",
    "Тимофей",
    "Фёдор",
    "Эдуард",
    "Ярослав",
    "Анатолий",
    "Всеволод",
    "Гордей",
    "Даниил",
    "Ефим",
    "Илья",
    "Лев",
    "Марк",
    "Никита",
    "Остап",
    "Прохор",
    "Семён",
    "Степан",
    "Тихон",
];
const RU_FEMALE_MORE: &[&str] = &[
    "Алиса",
    "Валерия",
    "Варвара",
    "Вера",
    "Галина",
    "Дарина",
    "Есения",
    "Жанна",
    "Зоя",
    "Инна",
    "Кира",
    "Лариса",
    "Лидия",
    "Маргарита",
    "Милана",
    "Надежда",
    "Нина",
    "Полина",
    "Раиса",
    "Светлана",
    "Таисия",
    "Ульяна",
    "Эмилия",
    "Ярослава",
    "Алла",
    "Вероника",
    "Диана",
    "Евгения",
    "Злата",
    "Кристина",
    "Любовь",
    "Мирослава",
    "Оксана",
    "Тамара",
];
/// Surname stems for registry-sized data (with -ов/-ев/-ин they make surnames).
const RU_SURNAME_MORE: &[&str] = &[
    "Соколов",
    "Лебедев",
    "Козлов",
    "Новиков",
    "Морозов",
    "Волков",
    "Соловьёв",
    "Васильев",
    "Зайцев",
    "Павлов",
    "Семёнов",
    "Голубев",
    "Виноградов",
    "Богданов",
    "Воробьёв",
    "Фёдоров",
    "Михайлов",
    "Беляев",
    "Тарасов",
    "Белов",
    "Комаров",
    "Орлов",
    "Киселёв",
    "Макаров",
    "Андреев",
    "Ковалёв",
    "Ильин",
    "Гусев",
    "Титов",
    "Кузьмин",
    "Кудрявцев",
    "Баранов",
    "Куликов",
    "Алексеев",
    "Степанов",
    "Яковлев",
    "Сорокин",
    "Сергеев",
    "Романов",
    "Захаров",
    "Борисов",
    "Королёв",
    "Герасимов",
    "Пономарёв",
    "Григорьев",
    "Лазарев",
    "Медведев",
    "Ершов",
    "Никитин",
    "Соболев",
    "Рябов",
    "Поляков",
    "Цветков",
    "Данилов",
    "Жуков",
    "Фролов",
    "Журавлёв",
    "Николаев",
    "Крылов",
    "Максимов",
    "Сидоров",
    "Осипов",
    "Белоусов",
    "Федотов",
];

/// Names of a profile's country for generated persons: most of its own people, some from
/// the neighbours (Russian names in Kyrgyzstan, Central Asian ones in Yugra). For a
/// registry-sized variety the lists are longer than the demo's and surnames are also made from
/// fathers' names, as Kyrgyz surnames are.
pub struct NameLists {
    own: (Vec<String>, Vec<&'static str>, Vec<&'static str>),
    other: (Vec<String>, Vec<&'static str>, Vec<&'static str>),
    /// Per cent of persons with names of the neighbours.
    other_percent: u64,
}

impl NameLists {
    pub fn for_profile(p: &Profile) -> NameLists {
        let kg_male: Vec<&'static str> = KG_MALE.iter().chain(KG_MALE_MORE).copied().collect();
        let kg_female: Vec<&'static str> =
            KG_FEMALE.iter().chain(KG_FEMALE_MORE).copied().collect();
        let mut kg: Vec<String> = KG_SURNAMES.iter().map(|s| s.to_string()).collect();
        for m in &kg_male {
            let mut forms = vec![format!("{m}ов")];
            if !m.ends_with("бек") {
                forms.push(format!("{m}беков"));
            }
            for f in forms {
                if !kg.contains(&f) {
                    kg.push(f);
                }
            }
        }
        let ru_male: Vec<&'static str> = RU_MALE.iter().chain(RU_MALE_MORE).copied().collect();
        let ru_female: Vec<&'static str> =
            RU_FEMALE.iter().chain(RU_FEMALE_MORE).copied().collect();
        let ru: Vec<String> = RU_SURNAMES
            .iter()
            .chain(RU_SURNAME_MORE)
            .map(|s| s.to_string())
            .collect();
        let kg = (kg, kg_male, kg_female);
        let ru = (ru, ru_male, ru_female);
        if p.meta.subject == "child" {
            NameLists {
                own: kg,
                other: ru,
                other_percent: 8,
            }
        } else {
            NameLists {
                own: ru,
                other: kg,
                other_percent: 15,
            }
        }
    }

    /// Surname, given name and (mostly) a patronymic.
    pub fn full_name(&self, rng: &mut Rng, sex: Sex) -> (String, String, Option<String>) {
        let (surnames, males, females) = if rng.chance(self.other_percent) {
            &self.other
        } else {
            &self.own
        };
        let surname = surname_for(&surnames[rng.below(surnames.len())], sex);
        let given = match sex {
            Sex::Male => males[rng.below(males.len())],
            Sex::Female => females[rng.below(females.len())],
        }
        .to_string();
        let father = males[rng.below(males.len())];
        let patronymic = (!rng.chance(8)).then(|| patronymic(father, sex));
        (surname, given, patronymic)
    }
}

#[derive(Debug, Clone, Default)]
pub struct DemoSummary {
    pub persons: usize,
    pub subjects: usize,
    pub families: usize,
    pub cases: usize,
}

/// A demo account and its password (printed once).
#[derive(Debug, Clone)]
pub struct DemoAccount {
    pub login: String,
    pub password: String,
    pub roles: String,
    pub scope: String,
    /// Administrators must have a second factor: the demo enrols one and prints its key.
    pub totp_secret: Option<String>,
}

/// Create the demo accounts, or give existing ones fresh passwords (which are printed).
pub async fn ensure_accounts(app: &App) -> AppResult<Vec<DemoAccount>> {
    let p = &app.profile;
    let root = p
        .root_territory()
        .map(|t| t.code.clone())
        .unwrap_or_default();
    // A specialist scoped to the first level-1 territory (one with parts of its own if any).
    let first_region = p
        .territories
        .iter()
        .find(|t| t.parent == root && p.territories.iter().any(|c| c.parent == t.code))
        .or_else(|| p.territories.iter().find(|t| t.parent == root))
        .map(|t| t.code.clone())
        .unwrap_or_else(|| root.clone());
    let specialist_org = territorial_agency(p, &first_region);
    // (login, name, roles, scope, organisation; "" = the profile's ministry)
    let mut plans: Vec<(&str, &str, Vec<Role>, String, String)> = vec![
        (
            "admin",
            "Администратор системы (демо)",
            vec![Role::Administrator],
            root.clone(),
            String::new(),
        ),
        (
            "supervisor",
            "Руководитель (демо)",
            vec![Role::Supervisor],
            root.clone(),
            String::new(),
        ),
        (
            "specialist",
            "Специалист (демо)",
            vec![Role::Specialist],
            first_region,
            specialist_org,
        ),
        (
            "viewer",
            "Наблюдатель центрального уровня (демо)",
            vec![Role::CentralViewer],
            root.clone(),
            String::new(),
        ),
        (
            "auditor",
            "Аудитор (демо)",
            vec![Role::Auditor],
            root.clone(),
            String::new(),
        ),
    ];
    // Where the subject form has sections owned by one agency kind (reentry-yugra, seed 004
    // §11), an agency specialist of the first such agency shows how those sections work.
    if let Some(agency) = section_agency(p) {
        plans.push((
            "agency",
            "Специалист ведомства (демо)",
            vec![Role::AgencySpecialist],
            agency.territory.clone(),
            agency.code.clone(),
        ));
    }
    let today = now_utc().date();
    let mut out = Vec::new();
    for (login, name, roles, scope, organisation) in plans {
        let password = one_time_password()?;
        match app.store.user_by_login(login).await? {
            Some(u) => {
                let mut tx = app.store.begin("system", None).await?;
                tx.set_password(&u.id, &hash_password(&password)?, false)
                    .await?;
                tx.commit().await?;
            }
            None => {
                app.create_user(
                    "system",
                    &NewUser {
                        login: login.to_string(),
                        full_name: name.to_string(),
                        roles: roles.clone(),
                        organisation,
                        scope_territory: Some(scope.clone()),
                        valid_from: today - Duration::days(1),
                        valid_until: Some(today + Duration::days(365)),
                        password: Some(password.clone()),
                    },
                )
                .await?;
            }
        }
        let mut totp_secret = None;
        if roles.contains(&Role::Administrator)
            && let Some(u) = app.store.user_by_login(login).await?
        {
            match &u.totp_secret {
                Some(s) => totp_secret = Some(s.clone()),
                None => {
                    let secret = crate::totp::new_secret()?;
                    let after = kamkor_store::UserRow {
                        totp_secret: Some(secret.clone()),
                        ..u.clone()
                    };
                    let mut tx = app.store.begin("system", None).await?;
                    tx.update_user(&u, &after, "second_factor_enrol").await?;
                    tx.commit().await?;
                    totp_secret = Some(secret);
                }
            }
        }
        out.push(DemoAccount {
            login: login.to_string(),
            password,
            roles: kamkor_domain::policy::format_roles(&roles),
            scope,
            totp_secret,
        });
    }
    Ok(out)
}

/// Subject-form sections an agency kind fills.
fn sections_owned(p: &Profile, kind: &str) -> usize {
    p.forms
        .iter()
        .filter(|f| f.applies_to == "person")
        .flat_map(|f| &f.section)
        .filter(|s| s.owners.iter().any(|o| o == kind))
        .count()
}

/// The agency a demo specialist in `scope` works for: one serving that territory or a part of
/// it, of a kind that owns no section of the subject form alone (the coordinating body, not a
/// sectoral agency), preferring kinds that fill shared sections; "" when there is none.
fn territorial_agency(p: &Profile, scope: &str) -> String {
    let sole: Vec<&str> = sole_section_owners(p);
    p.agencies
        .iter()
        .enumerate()
        .filter(|(_, a)| p.territory_within(&a.territory, scope))
        .filter(|(_, a)| !sole.contains(&a.kind.as_str()))
        .max_by_key(|(i, a)| {
            (
                sections_owned(p, &a.kind) > 0,
                a.territory == scope,
                std::cmp::Reverse(*i),
            )
        })
        .map(|(_, a)| a.code.clone())
        .unwrap_or_default()
}

/// Agency kinds that alone own a section of the subject form.
fn sole_section_owners(p: &Profile) -> Vec<&str> {
    p.forms
        .iter()
        .filter(|f| f.applies_to == "person")
        .flat_map(|f| &f.section)
        .filter(|s| s.owners.len() == 1)
        .map(|s| s.owners[0].as_str())
        .collect()
}

/// The first agency whose kind alone owns a section of the subject form.
fn section_agency(p: &Profile) -> Option<&kamkor_domain::profile::Agency> {
    let sole_owners = sole_section_owners(p);
    p.agencies
        .iter()
        .find(|a| sole_owners.contains(&a.kind.as_str()))
}

struct Codes {
    rel_alive_with: String,
    rel_separate: String,
    rel_migrant: String,
    rel_unknown: String,
    rel_deceased: String,
    rel_prison: String,
}

fn code_in(p: &Profile, cls: &str, wanted: &[&str]) -> String {
    let c = p.classifier(cls);
    for w in wanted {
        if c.and_then(|c| c.find(w)).is_some() {
            return (*w).to_string();
        }
    }
    c.and_then(|c| c.item.first())
        .map(|i| i.code.clone())
        .unwrap_or_default()
}

fn items(p: &Profile, cls: &str) -> Vec<String> {
    p.classifier(cls)
        .map(|c| {
            c.item
                .iter()
                .filter(|i| i.valid_to.is_none())
                .map(|i| i.code.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// How many times demo data may be added to one database: each run has its own range of
/// identifier serials, so identifiers stay unique across runs.
pub const MAX_DEMO_RUNS: u32 = 9;

/// Generate demo data for `target_persons` person records (subjects and relatives).
/// `run` counts earlier demo loads into the same database (0 for the first).
pub async fn generate(
    app: &App,
    target_persons: usize,
    seed: u64,
    run: u32,
    mut progress: impl FnMut(usize),
) -> AppResult<DemoSummary> {
    if run >= MAX_DEMO_RUNS {
        return Err(AppError::Config(format!(
            "demo data was already loaded {run} times into this database; use a new one"
        )));
    }
    let p = app.profile.clone();
    let child_profile = p.meta.subject == "child";
    let kind = p.national_id_kind();
    let leaves: Vec<String> = p
        .leaf_territories()
        .iter()
        .map(|t| t.code.clone())
        .collect();
    if leaves.is_empty() {
        return Err(AppError::Config("the profile has no territories".into()));
    }
    let codes = Codes {
        rel_alive_with: code_in(
            &p,
            "relative_status",
            &["alive_with_child", "alive_together"],
        ),
        rel_separate: code_in(&p, "relative_status", &["alive_separate"]),
        rel_migrant: code_in(&p, "relative_status", &["labour_migrant"]),
        rel_unknown: code_in(&p, "relative_status", &["whereabouts_unknown"]),
        rel_deceased: code_in(&p, "relative_status", &["deceased"]),
        rel_prison: code_in(&p, "relative_status", &["in_prison"]),
    };
    let citizenship = code_in(&p, "citizenship", &[p.meta.country.as_str()]);
    let disabilities = items(&p, "disability");
    let legal = items(&p, "legal_status");
    let payments = items(&p, "social_payment");
    let places = items(&p, "identification_place");
    let sources = items(&p, "identification_source");
    let categories = items(
        &p,
        if child_profile {
            "dls_category"
        } else {
            "need"
        },
    );
    // Responsible organisation for a territory: the nearest agency up the tree, preferring the
    // territorial unit kind for children and the social service for released persons.
    let mut agency_for: HashMap<String, String> = HashMap::new();
    for leaf in &leaves {
        let path = p.territory_path(leaf);
        let found = path.iter().rev().find_map(|t| {
            let mut here: Vec<_> = p
                .agencies
                .iter()
                .filter(|a| a.territory == t.code)
                .collect();
            here.sort_by_key(|a| {
                if a.kind.contains("territorial") || a.kind.contains("social") {
                    0
                } else {
                    1
                }
            });
            here.first().map(|a| a.code.clone())
        });
        agency_for.insert(
            leaf.clone(),
            found.unwrap_or_else(|| p.agencies[0].code.clone()),
        );
    }
    // Cases are spread over the demo accounts so that each home page shows work.
    let users = app.store.users().await?;
    let workers: Vec<&UserRow> = users
        .iter()
        .filter(|u| u.role.contains("specialist") || u.role.contains("supervisor"))
        .collect();

    let subject_form = p.forms.iter().find(|f| f.applies_to == "person").cloned();
    let family_form = p.forms.iter().find(|f| f.applies_to == "family").cloned();
    let today = now_utc().date();
    let mut rng = Rng::new(seed);
    // Kyrgyz PIN serials count per (sex, birth date), in a range of their own for each run;
    // SNILS numbers climb through a range of their own for each run.
    let mut serials: HashMap<(Sex, Date), u32> = HashMap::new();
    let mut snils_seq: u32 = 2_000_000 + run * 100_000_000;
    let base_ms = 1_700_000_000_000u64;
    let mut summary = DemoSummary::default();
    let mut case_seq: HashMap<i32, i64> = HashMap::new();
    // Continue each year's numbering after the cases already there (real data or an earlier run).
    for year in (today.year() - 4)..=today.year() {
        case_seq.insert(
            year,
            app.store.counter(&format!("case_number_{year}")).await?,
        );
    }

    let batch_households = 500;
    while summary.persons < target_persons {
        let mut persons: Vec<(Uuid, PersonData)> = Vec::new();
        let mut relations: Vec<(Uuid, Uuid, Uuid, RelationData)> = Vec::new();
        let mut families: Vec<(Uuid, FamilyData)> = Vec::new();
        let mut members: Vec<(Uuid, Uuid, Uuid, String)> = Vec::new();
        let mut cases: Vec<NewCase> = Vec::new();
        for _ in 0..batch_households {
            if summary.persons + persons.len() >= target_persons {
                break;
            }
            let ms = base_ms + (summary.persons + persons.len()) as u64;
            let territory = rng.pick(&leaves).clone();
            let kyrgyz = child_profile && !rng.chance(8);
            // Kyrgyz names for most children in KG; in Yugra some released persons are from Central Asia.
            let kyrgyz_names = kyrgyz || (!child_profile && rng.chance(15));
            let (surnames, males, females) = if kyrgyz_names {
                (KG_SURNAMES, KG_MALE, KG_FEMALE)
            } else {
                (RU_SURNAMES, RU_MALE, RU_FEMALE)
            };
            let family_surname = *rng.pick(surnames);
            let father_name = *rng.pick(males);
            let mother_name = *rng.pick(females);
            let address = format!("ул. {}, д. {}", rng.pick(streets(&p)), 1 + rng.below(120));
            let mut nid = |rng: &mut Rng, sex: Sex, birth: Date| -> Option<String> {
                match kind {
                    NationalIdKind::KgPin => {
                        let n = serials.entry((sex, birth)).or_insert(0);
                        *n += 1;
                        Some(
                            KgPin::build(sex, birth, run * 10_000 + *n)
                                .as_str()
                                .to_string(),
                        )
                    }
                    NationalIdKind::RuSnils => {
                        snils_seq = snils_seq.wrapping_add(1 + rng.below(7) as u32);
                        Some(Snils::build(snils_seq).digits().to_string())
                    }
                }
            };
            let adult_birth = |rng: &mut Rng, min_age: i64, max_age: i64| -> Date {
                today
                    - Duration::days(
                        365 * min_age + rng.below(((max_age - min_age) * 365) as usize) as i64,
                    )
            };
            let father_status = pick_status(&mut rng, &codes, true);
            let mother_status = pick_status(&mut rng, &codes, false);
            // Subjects first, so that parents are of a plausible age for their eldest child.
            let n_subjects = if child_profile { 1 + rng.below(3) } else { 1 };
            let births: Vec<Date> = (0..n_subjects)
                .map(|_| {
                    if child_profile {
                        today - Duration::days(30 + rng.below(17 * 365) as i64)
                    } else {
                        adult_birth(&mut rng, 19, 60)
                    }
                })
                .collect();
            let eldest = births.iter().min().copied().unwrap_or(today);
            let mother_birth = eldest - Duration::days(365 * 19 + rng.below(16 * 365) as i64);
            let father_birth =
                mother_birth - Duration::days(rng.below(8 * 365) as i64) + Duration::days(365);
            let father_id = rng.uuid(ms);
            let mother_id = rng.uuid(ms);
            let father = PersonData {
                role: PersonRole::Relative,
                surname: family_surname.to_string(),
                given_name: father_name.to_string(),
                patronymic: Some(patronymic(rng.pick::<&str>(males), Sex::Male)),
                sex: Sex::Male,
                birth_date: Some(father_birth),
                national_id: if rng.chance(85) {
                    nid(&mut rng, Sex::Male, father_birth)
                } else {
                    None
                },
                citizenship: Some(citizenship.clone()),
                residence_territory: Some(territory.clone()),
                address: Some(address.clone()),
                disability: None,
                legal_status: None,
                social_payments: Vec::new(),
                extra: Map::new(),
            };
            let mother = PersonData {
                role: PersonRole::Relative,
                surname: surname_for(family_surname, Sex::Female),
                given_name: mother_name.to_string(),
                patronymic: Some(patronymic(rng.pick::<&str>(males), Sex::Female)),
                sex: Sex::Female,
                birth_date: Some(mother_birth),
                national_id: if rng.chance(90) {
                    nid(&mut rng, Sex::Female, mother_birth)
                } else {
                    None
                },
                citizenship: Some(citizenship.clone()),
                residence_territory: Some(territory.clone()),
                address: Some(address.clone()),
                disability: None,
                legal_status: None,
                social_payments: Vec::new(),
                extra: Map::new(),
            };
            let family_id = rng.uuid(ms);
            let mut fam_extra = Map::new();
            if let Some(f) = &family_form {
                fill_extra(&mut rng, &p, f, &mut fam_extra, today);
            }
            families.push((
                family_id,
                FamilyData {
                    name: kamkor_domain::records::family_name(family_surname),
                    territory: Some(territory.clone()),
                    address: Some(address.clone()),
                    extra: fam_extra,
                },
            ));
            persons.push((father_id, father));
            persons.push((mother_id, mother));
            members.push((rng.uuid(ms), family_id, father_id, "father".into()));
            members.push((rng.uuid(ms), family_id, mother_id, "mother".into()));
            summary.families += 1;

            for birth in births {
                let sex = if rng.chance(50) {
                    Sex::Male
                } else {
                    Sex::Female
                };
                let given = if sex == Sex::Male {
                    *rng.pick(males)
                } else {
                    *rng.pick(females)
                };
                let id = rng.uuid(ms);
                let mut extra = Map::new();
                if let Some(f) = &subject_form {
                    fill_extra(&mut rng, &p, f, &mut extra, today);
                }
                let disabled = rng.chance(8) && disabilities.len() > 1;
                let subject = PersonData {
                    role: PersonRole::Subject,
                    surname: surname_for(family_surname, sex),
                    given_name: given.to_string(),
                    patronymic: if rng.chance(92) {
                        Some(patronymic(father_name, sex))
                    } else {
                        None
                    },
                    sex,
                    birth_date: Some(birth),
                    national_id: if rng.chance(93) {
                        nid(&mut rng, sex, birth)
                    } else {
                        None
                    },
                    citizenship: Some(citizenship.clone()),
                    residence_territory: Some(territory.clone()),
                    address: Some(address.clone()),
                    disability: if disabled {
                        Some(disabilities[1 + rng.below(disabilities.len() - 1)].clone())
                    } else {
                        disabilities.first().cloned()
                    },
                    legal_status: if child_profile && !legal.is_empty() {
                        Some(rng.pick(&legal).clone())
                    } else {
                        None
                    },
                    social_payments: if !payments.is_empty() && rng.chance(40) {
                        vec![rng.pick(&payments).clone()]
                    } else {
                        Vec::new()
                    },
                    extra,
                };
                persons.push((id, subject));
                members.push((
                    rng.uuid(ms),
                    family_id,
                    id,
                    if child_profile {
                        "child".into()
                    } else {
                        "member".into()
                    },
                ));
                let (mother_rel, father_rel) = ("mother", "father");
                relations.push((
                    rng.uuid(ms),
                    id,
                    father_id,
                    RelationData {
                        relation_kind: father_rel.into(),
                        relative_status: father_status.clone(),
                        note: None,
                    },
                ));
                relations.push((
                    rng.uuid(ms),
                    id,
                    mother_id,
                    RelationData {
                        relation_kind: mother_rel.into(),
                        relative_status: mother_status.clone(),
                        note: None,
                    },
                ));
                summary.subjects += 1;

                // Nine subjects in ten have a case; statuses cover the whole lifecycle.
                if rng.chance(90) {
                    let identified_on = today - Duration::days(rng.below(3 * 365) as i64);
                    // Cases start identified or in the initial assessment; some are then
                    // carried further through the real use cases (see `walk_cases`).
                    let status = if rng.chance(70) {
                        CaseStatus::Identified
                    } else {
                        CaseStatus::InitialAssessment
                    };
                    let year = identified_on.year();
                    let seq = case_seq.entry(year).or_insert(0);
                    *seq += 1;
                    let mut cats = Vec::new();
                    if !categories.is_empty() {
                        cats.push(rng.pick(&categories).clone());
                        if rng.chance(30) {
                            let c = rng.pick(&categories).clone();
                            if !cats.contains(&c) {
                                cats.push(c);
                            }
                        }
                    }
                    let worker = if workers.is_empty() {
                        None
                    } else {
                        Some(workers[rng.below(workers.len())].id.clone())
                    };
                    cases.push(NewCase {
                        id: rng.uuid(ms),
                        number: case_number(&p.meta.case_number_prefix, year, *seq),
                        status,
                        data: CaseData {
                            subject_kind: if child_profile {
                                SubjectKind::Child
                            } else {
                                SubjectKind::Person
                            },
                            subject_id: id,
                            identified_on,
                            identification_territory: territory.clone(),
                            identification_place: places.first().map(|_| rng.pick(&places).clone()),
                            identification_place_text: Some(address.clone()),
                            source: sources.first().map(|_| rng.pick(&sources).clone()),
                            categories: cats,
                            responsible_org: agency_for
                                .get(&territory)
                                .cloned()
                                .unwrap_or_default(),
                            extra: Map::new(),
                        },
                        responsible_user: worker,
                    });
                }
            }
        }
        summary.persons += persons.len();
        summary.cases += cases.len();
        let mut tx = app.store.begin("system", None).await?;
        tx.insert_persons(&persons).await?;
        tx.insert_families(&families).await?;
        tx.insert_family_members(&members).await?;
        tx.insert_relations(&relations).await?;
        tx.insert_cases(&cases).await?;
        tx.commit().await?;
        progress(summary.persons);
    }
    // Keep the case-number counters ahead of what the demo used.
    let mut tx = app.store.begin("system", None).await?;
    for (year, seq) in case_seq {
        let name = format!("case_number_{year}");
        tx.raise_counter(&name, seq).await?;
    }
    tx.commit().await?;
    walk_cases(app, seed, (summary.cases / 3).min(150)).await?;
    Ok(summary)
}

/// Carry up to `max` demo cases through case work with the real use cases (issue 5): they get
/// circumstances, assessments, generated and approved plans, done activities, monitoring
/// visits, and end in every stage of the lifecycle — as a demo actor, recorded in the ledger.
pub async fn walk_cases(app: &App, seed: u64, max: usize) -> AppResult<usize> {
    use crate::casework::{
        ActivityUpdate, AssessmentDraft, CircumstanceDraft, StepDraft, VisitDraft,
    };
    let p = app.profile.clone();
    let ctx = app.system_worker_ctx();
    let mut rng = Rng::new(seed ^ 0x5eed_cafe);
    let cases = app
        .store
        .list_cases(&kamkor_store::CaseQuery {
            status: Some(CaseStatus::Identified),
            limit: 500,
            ..Default::default()
        })
        .await?;
    let kinds: Vec<String> = p
        .classifier(&p.casework.circumstance_classifier)
        .map(|c| c.item.iter().map(|i| i.code.clone()).collect())
        .unwrap_or_default();
    let outcomes: Vec<String> = p
        .classifier(&p.casework.outcome_classifier)
        .map(|c| c.item.iter().map(|i| i.code.clone()).collect())
        .unwrap_or_default();
    let today = ctx.today();
    let mut walked = 0;
    for (i, c) in cases.iter().take(max).enumerate() {
        // 0 identified with circumstances … 7 closed: every stage appears.
        let target = i % 8;
        let id = c.id;
        let ctx = &ctx;
        let step = |name: &'static str| async move {
            let v = app.store.case(id).await?.map(|c| c.version).unwrap_or(0);
            app.case_step(
                ctx,
                id,
                &StepDraft {
                    step: name.into(),
                    version: v,
                    ..StepDraft::default()
                },
            )
            .await
        };
        for _ in 0..1 + rng.below(3) {
            if kinds.is_empty() {
                break;
            }
            let kind = rng.pick(&kinds).clone();
            let from = today - Duration::days(5 + rng.below(60) as i64);
            let _ = app
                .add_circumstance(
                    ctx,
                    id,
                    &CircumstanceDraft {
                        kind,
                        note: String::new(),
                        effective_from: kamkor_domain::records::format_date(from),
                    },
                )
                .await;
        }
        walked += 1;
        if target == 0 {
            continue;
        }
        step("start_initial_assessment").await?;
        let done_stage = |stage: &str, rng: &mut Rng| -> Vec<AssessmentDraft> {
            p.assessment_forms(stage)
                .map(|f| AssessmentDraft {
                    form: f.code.clone(),
                    answers: demo_answers(&p, f, rng),
                    complete: true,
                    ..AssessmentDraft::default()
                })
                .collect()
        };
        if target == 1 {
            continue;
        }
        for d in done_stage("initial_assessment", &mut rng) {
            app.save_assessment(ctx, id, &d).await?;
        }
        step("start_comprehensive_assessment").await?;
        if target == 2 {
            continue;
        }
        for d in done_stage("comprehensive_assessment", &mut rng) {
            app.save_assessment(ctx, id, &d).await?;
        }
        if target == 3 {
            // A plan waiting for the supervisor's approval, one activity already late.
            if let Some(a) = app.store.case_records(id, Some("activity")).await?.first() {
                let _ = app
                    .update_activity(
                        ctx,
                        id,
                        a.id,
                        &ActivityUpdate {
                            version: a.version,
                            due_on: kamkor_domain::records::format_date(today - Duration::days(7)),
                            ..ActivityUpdate::default()
                        },
                    )
                    .await;
            }
            continue;
        }
        for plan in &p.rules.plans {
            let _ = app.approve_plan(ctx, id, &plan.code, None).await;
        }
        // Some activities done, one in progress.
        let acts = app.store.case_records(id, Some("activity")).await?;
        for (k, a) in acts.iter().enumerate() {
            let status = match k % 4 {
                0 => "done",
                1 => "in_progress",
                _ => continue,
            };
            let _ = app
                .update_activity(
                    ctx,
                    id,
                    a.id,
                    &ActivityUpdate {
                        version: a.version,
                        status: status.into(),
                        result: if status == "done" {
                            "Выполнено (демо)".into()
                        } else {
                            String::new()
                        },
                        ..ActivityUpdate::default()
                    },
                )
                .await;
        }
        if target == 4 {
            continue;
        }
        // Every other monitored case missed its last visit: the home pages flag them.
        let missed = i % 16 == 5;
        let visited = if missed {
            today - Duration::days(100)
        } else {
            today
        };
        let _ = app
            .record_visit(
                ctx,
                id,
                &VisitDraft {
                    visited_on: kamkor_domain::records::format_date(visited),
                    findings: "Семья посещена, ребёнок дома, условия удовлетворительные (демо)."
                        .into(),
                    next_visit_on: if missed {
                        kamkor_domain::records::format_date(today - Duration::days(10))
                    } else {
                        String::new()
                    },
                    ..VisitDraft::default()
                },
            )
            .await;
        let _ = step("start_monitoring").await;
        if target == 5 {
            continue;
        }
        let v = app.store.case(id).await?.map(|c| c.version).unwrap_or(0);
        if target == 6 {
            let _ = app
                .case_step(
                    ctx,
                    id,
                    &StepDraft {
                        step: "suspend".into(),
                        version: v,
                        reason: "Обстоятельства не требуют дальнейшей работы (демо)".into(),
                        agreed_with: "Начальник территориального отдела (демо)".into(),
                        ..StepDraft::default()
                    },
                )
                .await;
            continue;
        }
        if let Some(o) = outcomes.first() {
            let _ = app
                .case_step(
                    ctx,
                    id,
                    &StepDraft {
                        step: "close".into(),
                        version: v,
                        outcome: o.clone(),
                        ..StepDraft::default()
                    },
                )
                .await;
        }
    }
    Ok(walked)
}

/// Answers for every required field of an assessment form, chosen at random.
fn demo_answers(
    p: &Profile,
    f: &FormDef,
    rng: &mut Rng,
) -> std::collections::BTreeMap<String, Value> {
    let mut out = std::collections::BTreeMap::new();
    for (_, fd) in f.fields().filter(|(_, fd)| fd.required) {
        let v = match (fd.kind, fd.classifier.as_deref()) {
            (FieldType::Classifier, Some(c)) => match p.classifier(c) {
                Some(cls) if !cls.item.is_empty() => rng.pick(&cls.item).code.clone(),
                _ => continue,
            },
            (FieldType::Bool, _) => (if rng.chance(30) { "true" } else { "false" }).into(),
            (FieldType::Integer, _) => fd.min.unwrap_or(0).to_string(),
            _ => "—".into(),
        };
        out.insert(fd.code.clone(), Value::String(v));
    }
    out
}

fn pick_status(rng: &mut Rng, c: &Codes, father: bool) -> String {
    let r = rng.below(100);
    let s = if father {
        match r {
            0..=49 => &c.rel_alive_with,
            50..=69 => &c.rel_migrant,
            70..=79 => &c.rel_separate,
            80..=87 => &c.rel_unknown,
            88..=95 => &c.rel_deceased,
            _ => &c.rel_prison,
        }
    } else {
        match r {
            0..=64 => &c.rel_alive_with,
            65..=79 => &c.rel_migrant,
            80..=87 => &c.rel_separate,
            88..=93 => &c.rel_unknown,
            _ => &c.rel_deceased,
        }
    };
    s.clone()
}

/// A plausible value for a free-text field, by what its code says it holds.
fn demo_text(
    rng: &mut Rng,
    streets: &[&str],
    f: &kamkor_domain::profile::FieldDef,
) -> Option<String> {
    let code = f.code.as_str();
    if code.contains("address") {
        Some(format!(
            "ул. {}, д. {}, кв. {}",
            rng.pick(streets),
            1 + rng.below(90),
            1 + rng.below(60)
        ))
    } else if code.contains("school") {
        Some(format!("Средняя школа № {}", 1 + rng.below(70)))
    } else if code.contains("certificate") {
        Some(format!("I-АН № {}", 100_000 + rng.below(899_999)))
    } else {
        // Free text the demo cannot invent sensibly stays empty.
        None
    }
}

/// Fill a form's extra fields with plausible values by type.
fn fill_extra(
    rng: &mut Rng,
    p: &Profile,
    form: &FormDef,
    out: &mut Map<String, Value>,
    today: Date,
) {
    for (_, f) in form.fields() {
        if !f.required && rng.chance(35) {
            continue;
        }
        let v = match f.kind {
            FieldType::Text => match demo_text(rng, streets(p), f) {
                Some(t) => Value::String(t),
                None => continue,
            },
            FieldType::Textarea => Value::String("Сведения внесены при выявлении.".into()),
            FieldType::Integer | FieldType::Money => {
                let lo = f.min.unwrap_or(0);
                let hi = f.max.unwrap_or(if f.kind == FieldType::Money {
                    3_000_000
                } else {
                    60
                });
                Value::from(lo + (rng.next_u64() % ((hi - lo).max(0) as u64 + 1)) as i64)
            }
            FieldType::Date => Value::String(kamkor_domain::records::format_date(
                today - Duration::days(rng.below(700) as i64),
            )),
            FieldType::Bool => Value::Bool(rng.chance(50)),
            FieldType::Classifier => {
                let xs = items(p, f.classifier.as_deref().unwrap_or_default());
                if xs.is_empty() {
                    continue;
                }
                Value::String(rng.pick(&xs).clone())
            }
            FieldType::MultiClassifier => {
                let xs = items(p, f.classifier.as_deref().unwrap_or_default());
                if xs.is_empty() {
                    continue;
                }
                Value::Array(vec![Value::String(rng.pick(&xs).clone())])
            }
            FieldType::Territory => match p.leaf_territories().first() {
                Some(t) => Value::String(t.code.clone()),
                None => continue,
            },
        };
        out.insert(f.code.clone(), v);
    }
    // Dates the form keeps in order (a notice of release before the release): 30–210 days
    // before the date named.
    for (_, f) in form.fields() {
        if let Some(other) = &f.not_after
            && let Some(b) = out
                .get(other)
                .and_then(Value::as_str)
                .and_then(kamkor_domain::records::parse_date)
            && out.contains_key(&f.code)
        {
            let d = b - Duration::days(30 + rng.below(180) as i64);
            out.insert(
                f.code.clone(),
                Value::String(kamkor_domain::records::format_date(d)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patronymics_and_surnames() {
        assert_eq!(patronymic("Айбек", Sex::Male), "Айбекович");
        assert_eq!(patronymic("Айбек", Sex::Female), "Айбековна");
        assert_eq!(patronymic("Юрий", Sex::Male), "Юрьевич");
        assert_eq!(patronymic("Дмитрий", Sex::Male), "Дмитриевич");
        assert_eq!(patronymic("Сергей", Sex::Female), "Сергеевна");
        assert_eq!(patronymic("Игорь", Sex::Female), "Игоревна");
        assert_eq!(surname_for("Асанов", Sex::Female), "Асанова");
        assert_eq!(surname_for("Асанов", Sex::Male), "Асанов");
    }

    #[test]
    fn demo_addresses_use_the_profiles_own_streets() {
        assert_eq!(streets(&profile("tzhs-kg")), KG_STREETS);
        let yugra = streets(&profile("reentry-yugra"));
        assert_eq!(yugra, YUGRA_STREETS);
        for kyrgyz in [
            "Токтогула",
            "Манаса",
            "Чуй",
            "Жибек Жолу",
            "Курманжан Датки",
        ] {
            assert!(!yugra.contains(&kyrgyz), "{kyrgyz}");
        }
    }

    #[test]
    fn rng_is_deterministic() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_eq!(Rng::new(1).uuid(5).get_version_num(), 7);
    }

    fn profile(name: &str) -> Profile {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../profiles")
            .join(name);
        crate::load_profile(&dir).expect("profile loads")
    }

    #[test]
    fn demo_specialists_work_for_the_coordinating_body_and_agencies_for_their_section() {
        // Yugra: a district's local administration, not its employment centre; the agency
        // account is the prison service, which alone fills the release section (seed 004 §11).
        let y = profile("reentry-yugra");
        let org = territorial_agency(&y, "71811000");
        assert_eq!(y.agency(&org).map(|a| a.kind.as_str()), Some("omsu"));
        assert_eq!(section_agency(&y).map(|a| a.kind.as_str()), Some("ufsin"));
        // Kyrgyzstan: a territorial unit of the oblast; no section belongs to one agency.
        let k = profile("tzhs-kg");
        let region = "41702000000000";
        let org = territorial_agency(&k, region);
        let a = k.agency(&org).expect("an agency");
        assert!(k.territory_within(&a.territory, region));
        assert_ne!(a.kind, "ministry");
        assert!(section_agency(&k).is_none());
    }
}
