//! A small driver for headless Chromium over the DevTools protocol
//! (`--remote-debugging-pipe`: JSON messages ended by a NUL byte, written to
//! the browser's fd 3 and read from its fd 4, here two named pipes), for the
//! web app's real-browser tests (`ui.rs`). Chromium comes from the Debian
//! package `chromium`; when it is absent it is installed with apt-get
//! (as root) or `sudo -n apt-get`, never downloaded from elsewhere.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long one DevTools call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a condition is waited for.
pub const WAIT: Duration = Duration::from_secs(15);

/// The path of the Debian package's browser, installing it when absent.
fn chromium() -> PathBuf {
    let find = || ["/usr/bin/chromium", "/usr/bin/chromium-browser"].iter().map(PathBuf::from).find(|p| p.exists());
    if let Some(path) = find() {
        return path;
    }
    crate::apt_install(&["chromium"]);
    find().expect("the Debian package chromium installs /usr/bin/chromium")
}

/// A running headless Chromium.
pub struct Browser {
    child: Child,
    to_browser: File,
    from_browser: Receiver<Value>,
    next_id: u64,
    /// Events received while waiting for answers, per session.
    pub events: Vec<Value>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts the browser with a fresh profile.
    pub fn launch() -> Browser {
        let binary = chromium();
        let profile = tempfile::tempdir().expect("profile dir");
        let dir = profile.path();
        let (input, output) = (dir.join("cdp-in"), dir.join("cdp-out"));
        for fifo in [&input, &output] {
            let status = Command::new("mkfifo").arg(fifo).status().expect("mkfifo");
            assert!(status.success(), "mkfifo {}", fifo.display());
        }
        let flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-default-browser-check",
            "--mute-audio",
            "--password-store=basic",
            "--window-size=1200,900",
            "--remote-debugging-pipe",
        ];
        // The shell gives the browser the two pipes as fds 3 and 4.
        let script = format!("exec \"$0\" --user-data-dir=\"$1\" {} about:blank 3<\"$2\" 4>\"$3\"", flags.join(" "));
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(&binary)
            .arg(dir.join("profile"))
            .arg(&input)
            .arg(&output)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        // Opening order matches the shell's: fd 3 (our writing end) first.
        let to_browser = File::options().write(true).open(&input).expect("open the browser's input pipe");
        let from = File::open(&output).expect("open the browser's output pipe");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(from);
            loop {
                let mut message = Vec::new();
                match reader.read_until(0, &mut message) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if message.last() == Some(&0) {
                            message.pop();
                        }
                        let Ok(value) = serde_json::from_slice::<Value>(&message) else { continue };
                        if tx.send(value).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let mut browser =
            Browser { child, to_browser, from_browser: rx, next_id: 0, events: Vec::new(), _profile: profile };
        browser.call(None, "Browser.getVersion", json!({}));
        browser
    }

    /// One DevTools call (on a page's session when given); its result.
    pub fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.try_call(session, method, params).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The same, with the failure as an error (for use while a test fails).
    pub fn try_call(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).expect("serialise");
        bytes.push(0);
        self.to_browser.write_all(&bytes).map_err(|e| format!("{method}: cannot write to the browser: {e}"))?;
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.from_browser.recv_timeout(left) {
                Ok(answer) if answer["id"] == json!(id) => {
                    if let Some(error) = answer.get("error") {
                        return Err(format!("{method} failed: {error}"));
                    }
                    return Ok(answer["result"].clone());
                }
                Ok(event) => {
                    if event.get("method").is_some() {
                        self.events.push(event);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("{method}: no answer from the browser in {CALL_TIMEOUT:?}"))
                }
                Err(RecvTimeoutError::Disconnected) => return Err(format!("{method}: the browser went away")),
            }
        }
    }

    /// A new tab in its own browser context (its own storage: another person).
    pub fn new_page(&mut self) -> Page {
        let context = self.call(None, "Target.createBrowserContext", json!({"disposeOnDetach": true}));
        let context = context["browserContextId"].as_str().expect("context id").to_owned();
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank", "browserContextId": context}));
        let target = target["targetId"].as_str().expect("target id").to_owned();
        let attached = self.call(None, "Target.attachToTarget", json!({"targetId": target, "flatten": true}));
        let session = attached["sessionId"].as_str().expect("session id").to_owned();
        let page = Page { session };
        self.call(Some(&page.session), "Page.enable", json!({}));
        self.call(Some(&page.session), "Runtime.enable", json!({}));
        self.call(Some(&page.session), "Emulation.setFocusEmulationEnabled", json!({"enabled": true}));
        // Content-Security-Policy violations, collected from the first script on.
        let watch = "window.__csp = []; document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));";
        self.call(Some(&page.session), "Page.addScriptToEvaluateOnNewDocument", json!({"source": watch}));
        self.call(
            Some(&page.session),
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
        );
        page
    }

    /// Console errors and exceptions a page reported so far.
    pub fn page_errors(&self, page: &Page) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["sessionId"] == json!(page.session))
            .filter_map(|e| match e["method"].as_str() {
                Some("Runtime.exceptionThrown") => Some(e["params"]["exceptionDetails"].to_string()),
                Some("Runtime.consoleAPICalled") if e["params"]["type"] == "error" => {
                    Some(e["params"]["args"].to_string())
                }
                _ => None,
            })
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Asked to close, the browser ends its helper processes itself.
        let _ = self.try_call(None, "Browser.close", json!({}));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One tab, attached with a flat session.
#[derive(Debug, Clone)]
pub struct Page {
    /// The DevTools session of this tab.
    pub session: String,
}

/// Standard base64 (the screenshot's encoding).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter_map(value) {
        acc = (acc << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    out
}

/// A scenario: a browser, its pages, and a screenshot of every page saved
/// when the scenario fails (in `$CARGO_TARGET_TMPDIR/ui-screenshots/`).
pub struct Scenario {
    pub browser: Browser,
    name: &'static str,
    pages: Vec<(String, Page)>,
}

/// Where failure screenshots go.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots")
}

impl Scenario {
    pub fn new(name: &'static str) -> Scenario {
        Scenario { browser: Browser::launch(), name, pages: Vec::new() }
    }

    /// A new person: a tab in its own browser context.
    pub fn person(&mut self, label: &str) -> Page {
        let page = self.browser.new_page();
        self.pages.push((label.to_owned(), page.clone()));
        page
    }

    /// Saves a PNG of `page` to `path`.
    pub fn screenshot(&mut self, page: &Page, path: &Path) -> Result<(), String> {
        let shot = self.browser.try_call(Some(&page.session), "Page.captureScreenshot", json!({"format": "png"}))?;
        let bytes = base64_decode(shot["data"].as_str().unwrap_or(""));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        std::fs::write(path, bytes).map_err(|e| e.to_string())
    }

    /// Evaluates `expression` in the page (awaiting a promise); its JSON value.
    pub fn eval(&mut self, page: &Page, expression: &str) -> Value {
        let answer = self.browser.call(
            Some(&page.session),
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(details) = answer.get("exceptionDetails") {
            panic!("{expression}\nthrew {details}");
        }
        answer["result"]["value"].clone()
    }

    /// Waits until `condition` (a JS expression) is truthy; fails with `what`.
    pub fn wait(&mut self, page: &Page, condition: &str, what: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let value = self.eval(
                page,
                &format!("(() => {{ try {{ return !!({condition}); }} catch (e) {{ return false; }} }})()"),
            );
            if value == json!(true) {
                return;
            }
            if Instant::now() > deadline {
                let body = self.eval(page, "document.body ? document.body.innerText.slice(0, 2000) : ''");
                panic!("waited {WAIT:?} for {what} ({condition}); the page shows:\n{}", body.as_str().unwrap_or(""));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The visible text of the first element matching `selector`.
    pub fn text(&mut self, page: &Page, selector: &str) -> String {
        let expression = format!("(document.querySelector({}) || {{}}).innerText || ''", json!(selector));
        self.eval(page, &expression).as_str().unwrap_or("").to_owned()
    }

    /// Opens `url` in the tab.
    pub fn goto(&mut self, page: &Page, url: &str) {
        self.browser.call(Some(&page.session), "Page.navigate", json!({"url": url}));
    }

    /// Moves the app to another screen (`#/pay`…), emptying the current one
    /// first so that a wait sees the new screen's elements only.
    pub fn goto_hash(&mut self, page: &Page, hash: &str) {
        let expression = format!(
            "(() => {{ const m = document.getElementById('main'); if (m) m.replaceChildren(); if (location.hash === {h}) window.dispatchEvent(new HashChangeEvent('hashchange')); else location.hash = {h}; return true; }})()",
            h = json!(hash)
        );
        self.eval(page, &expression);
    }

    /// Sets an input's value as typing would (focus, value, `input` event).
    pub fn fill(&mut self, page: &Page, selector: &str, text: &str) {
        let expression = format!(
            "(() => {{ const e = document.querySelector({}); if (!e) throw new Error('no ' + {}); e.focus(); e.value = {}; e.dispatchEvent(new Event('input', {{bubbles: true}})); return true; }})()",
            json!(selector),
            json!(selector),
            json!(text)
        );
        self.eval(page, &expression);
    }

    /// Clicks the first element matching `selector`.
    pub fn click(&mut self, page: &Page, selector: &str) {
        let expression = format!(
            "(() => {{ const e = document.querySelector({}); if (!e) throw new Error('no ' + {}); e.click(); return true; }})()",
            json!(selector),
            json!(selector)
        );
        self.eval(page, &expression);
    }

    /// Presses a key as the keyboard does (`Tab`, `Shift+Tab`, `Enter`, `Space`).
    pub fn press(&mut self, page: &Page, key: &str) {
        let (key, code, vk, text, modifiers) = match key {
            "Tab" => ("Tab", "Tab", 9, "", 0),
            "Shift+Tab" => ("Tab", "Tab", 9, "", 8),
            "Enter" => ("Enter", "Enter", 13, "\r", 0),
            "Space" => (" ", "Space", 32, " ", 0),
            other => panic!("no key {other}"),
        };
        let mut down =
            json!({"type": "keyDown", "key": key, "code": code, "windowsVirtualKeyCode": vk, "modifiers": modifiers});
        if !text.is_empty() {
            down["text"] = json!(text);
        }
        self.browser.call(Some(&page.session), "Input.dispatchKeyEvent", down);
        let up =
            json!({"type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": vk, "modifiers": modifiers});
        self.browser.call(Some(&page.session), "Input.dispatchKeyEvent", up);
    }

    /// Types text into the focused element, as a keyboard would.
    pub fn type_text(&mut self, page: &Page, text: &str) {
        self.browser.call(Some(&page.session), "Input.insertText", json!({"text": text}));
    }

    /// Console errors and uncaught exceptions of `page` so far.
    pub fn page_errors(&self, page: &Page) -> Vec<String> {
        self.browser.page_errors(page)
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let dir = screenshot_dir();
        let pages = std::mem::take(&mut self.pages);
        for (label, page) in &pages {
            let path = dir.join(format!("{}-{label}.png", self.name));
            // Nothing here may panic: this runs while the test is failing.
            match self.screenshot(page, &path) {
                Ok(()) => eprintln!("screenshot of {label} saved to {}", path.display()),
                Err(e) => eprintln!("no screenshot of {label}: {e}"),
            }
        }
    }
}
