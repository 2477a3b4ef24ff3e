//! End-to-end tests of Kamkor in a headless browser. This crate holds no code: the journeys are
//! in `tests/browser.rs` (records) and `tests/accounts.rs` (accounts and access), over the
//! harness in `tests/common`, and run when `KAMKOR_CHROMEDRIVER` names a chromedriver binary
//! (`KAMKOR_CHROMIUM` the browser, `KAMKOR_SCREENSHOTS` a folder for the screenshots).
