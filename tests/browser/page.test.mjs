// status_web's page in Debian's Chromium, against the real server, gateway
// and client. Run by `cargo test --release` (tests/browser.rs), or by hand:
//   STATUS_SERVER=target/release/status_server STATUS_CLIENT=target/release/status_client \
//   STATUS_WEB=target/release/status_web node --test tests/browser/
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  BOUND_MS, PASSWORD, browserSkip, connectionsTo, launch, runClient, screenshotPath, set,
  startServer, startWeb, usersFile,
} from "./harness.mjs";

const skip = await browserSkip();
let browser;
const running = [];

before(async () => { if (!skip) browser = await launch(); });
after(async () => {
  for (const proc of running.reverse()) await proc.stop();
  if (browser) await browser.close();
});

async function server(options) {
  const s = await startServer(options);
  running.push(s.proc);
  return s;
}

async function web(endpoint, args, listen) {
  const w = await startWeb(endpoint, args, listen);
  running.push(w.proc);
  return w;
}

/** Whether the page says the server answers: changes pushed, or polled. */
const LIVE = '#reach[data-state="live"], #reach[data-state="polled"]';

/** A page of the gateway, once it says the server is live. */
async function open(url, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 }, ...options });
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForSelector(LIVE, { timeout: BOUND_MS });
  return page;
}

/** Waits until the page shows `name` with `status` on the board (not as gone). */
async function shows(page, name, status) {
  await page.waitForFunction(([n, s]) => {
    const row = [...document.querySelectorAll(".row:not(.left)")].find((r) => r.dataset.name === n);
    return row && row.querySelector(".status").textContent === s;
  }, [name, status], { timeout: BOUND_MS });
}

async function freePort() {
  return new Promise((done) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
  });
}

test("the page loads and shows the board, with ages and the connection", { skip }, async () => {
  const s = await server();
  await set(s, "alice", "in a meeting");
  await set(s, "bob", "working from home, back on Monday");
  const w = await web(s.endpoint);
  const page = await open(w.url);
  await shows(page, "alice", "in a meeting");
  await shows(page, "bob", "working from home, back on Monday");
  assert.equal(await page.textContent("#count"), "2 names");
  assert.equal(await page.textContent('.row[data-name="alice"] .age'), "just now");
  assert.equal(await page.textContent("#reach"), "live");
  const names = await page.$$eval(".row .name", (els) => els.map((e) => e.textContent));
  assert.deepEqual(names, ["alice", "bob"], "in the server's order");
  await page.screenshot({ path: screenshotPath("board.png") });
  await page.context().close();
});

test("a right-to-left override in a status turns that status only, not the row", { skip }, async () => {
  const s = await server();
  await set(s, "mallory", "\u202eevil");
  const w = await web(s.endpoint);
  const page = await open(w.url);
  await shows(page, "mallory", "\u202eevil");
  const cells = await page.$eval('.row[data-name="mallory"]', (row) =>
    ["name", "status", "age"].map((part) => {
      const cell = row.querySelector("." + part);
      const box = cell.getBoundingClientRect();
      return { bidi: getComputedStyle(cell).unicodeBidi, left: box.left, right: box.right };
    }));
  const [name, status, age] = cells;
  assert.equal(name.bidi, "isolate");
  assert.equal(status.bidi, "isolate");
  assert.ok(name.right <= status.left && status.right <= age.left, JSON.stringify(cells));
  await page.context().close();
});

test("a change made with status_client --set appears without a reload", { skip }, async () => {
  const s = await server();
  const w = await web(s.endpoint);
  const page = await open(w.url);
  await page.evaluate(() => { window.loadedOnce = true; });
  const started = Date.now();
  await set(s, "carol", "at the dentist");
  await shows(page, "carol", "at the dentist");
  const took = Date.now() - started;
  assert.ok(took < 5000, `the change took ${took} ms to show`);
  assert.equal(await page.evaluate(() => window.loadedOnce), true, "the page was not reloaded");
  assert.ok(await page.$('.row.changed[data-name="carol"]'), "the change is highlighted");
  await set(s, "carol", "back");
  await shows(page, "carol", "back");
  await page.context().close();
});

test("--clear and expiry remove a row, shown for a while as gone", { skip }, async () => {
  const s = await server({ args: ["--ttl", "3s"] });
  const w = await web(s.endpoint);
  const page = await open(w.url);
  await set(s, "dave", "in the lab");
  await set(s, "erin", "on a call");
  await shows(page, "dave", "in the lab");
  await shows(page, "erin", "on a call");
  const cleared = await runClient(["--endpoint", s.endpoint, "dave", "--clear", "--quiet"]);
  assert.equal(cleared.code, 0, cleared.stderr);
  await page.waitForSelector('.row.left[data-name="dave"]', { timeout: BOUND_MS });
  assert.equal(await page.textContent('.row.left[data-name="dave"] .status'), "left");
  // erin was not refreshed: the server's TTL removes her.
  await page.waitForSelector('.row.left[data-name="erin"]', { timeout: BOUND_MS });
  assert.equal(await page.textContent('.row.left[data-name="erin"] .status'), "expired");
  assert.equal(await page.textContent("#count"), "0 names");
  const json = await (await fetch(w.url + "board.json")).json();
  assert.deepEqual(json.entries, []);
  await page.context().close();
});

test("the stale marker shows while the server is down and clears when it is back, resynced", { skip }, async () => {
  const state = join(mkdtempSync(join(tmpdir(), "status-board-state-")), "board.log");
  const first = await server({ state });
  await set(first, "frank", "before the restart");
  const w = await web(first.endpoint);
  const page = await open(w.url);
  await shows(page, "frank", "before the restart");
  await first.proc.stop();
  await page.waitForSelector('#reach[data-state="stale"]', { timeout: BOUND_MS });
  assert.match(await page.textContent("#reach"), /^server unreachable · stale since \d\d:\d\d:\d\d/);
  await shows(page, "frank", "before the restart"); // the last board stays
  await page.screenshot({ path: screenshotPath("stale.png") });
  const second = await server({ state, port: first.port, publish: first.publish });
  await set(second, "gina", "after the restart");
  await shows(page, "gina", "after the restart");
  await shows(page, "frank", "before the restart");
  await page.waitForSelector('#reach[data-state="live"]', { timeout: BOUND_MS });
  await page.context().close();
});

test("the page reconnects by itself to a restarted gateway and resyncs", { skip }, async () => {
  const s = await server();
  await set(s, "hank", "here");
  const port = await freePort();
  const first = await web(s.endpoint, [], `127.0.0.1:${port}`);
  const page = await open(first.url);
  await shows(page, "hank", "here");
  await first.proc.stop();
  await page.waitForSelector('#reach[data-state="offline"]', { timeout: BOUND_MS });
  assert.match(await page.textContent("#reach"), /^gateway unreachable · stale since /);
  await set(s, "ivy", "posted while the gateway was down");
  await web(s.endpoint, [], `127.0.0.1:${port}`);
  await shows(page, "ivy", "posted while the gateway was down");
  await page.waitForSelector('#reach[data-state="live"]', { timeout: BOUND_MS });
  await page.context().close();
});

test("the form posts, and shows a refused post's error", { skip }, async () => {
  const s = await server({ args: ["--max-request", "40"] });
  const w = await web(s.endpoint);
  const page = await open(w.url);
  await page.fill('input[name="name"]', "jack");
  await page.fill('input[name="status"]', "from the browser");
  await page.click('button[type="submit"]');
  await shows(page, "jack", "from the browser");
  await page.waitForSelector("#post-message.posted", { timeout: BOUND_MS });
  assert.equal(await page.inputValue('input[name="status"]'), "", "the status field is emptied");
  await page.fill('input[name="status"]', "a status far too long for a server that takes 40 bytes");
  await page.click('button[type="submit"]');
  await page.waitForSelector("#post-message.error", { timeout: BOUND_MS });
  assert.match(await page.textContent("#post-message"), /^error: too-long: request is \d+ bytes, the limit is 40/);
  await shows(page, "jack", "from the browser");
  await page.context().close();
});

test("with logins, a post is the browser's user's: only bob sets bob", { skip }, async () => {
  const users = await usersFile(["alice", "bob"]);
  const anonymous = await freePort();
  const s = await server({
    args: ["--auth", users, "--anonymous", `tcp://127.0.0.1:${anonymous}`],
  });
  const w = await web(s.endpoint, ["--read-endpoint", `tcp://127.0.0.1:${anonymous}`, "--interval", "0.2"]);
  const page = await open(w.url);
  // The gateway asked the server: the fields are there before any post.
  await page.waitForSelector('input[name="user"]', { state: "visible", timeout: BOUND_MS });
  await page.fill('input[name="name"]', "bob");
  await page.fill('input[name="status"]', "no login");
  await page.click('button[type="submit"]');
  await page.waitForSelector("#post-message.error", { timeout: BOUND_MS });
  assert.match(await page.textContent("#post-message"), /^error: the status server wants a login/);
  // The page asks for the login itself: no browser dialog.
  assert.equal(await page.isVisible('input[name="user"]'), true);
  await page.fill('input[name="user"]', "bob");
  await page.fill('input[name="password"]', PASSWORD);
  await page.fill('input[name="name"]', "alice");
  await page.fill('input[name="status"]', "forged by bob");
  await page.click('button[type="submit"]');
  await page.waitForFunction(() => document.getElementById("post-message").textContent.includes("may not"),
    null, { timeout: BOUND_MS });
  assert.equal(await page.textContent("#post-message"), "error: forbidden: user 'bob' may not set 'alice'");
  await page.fill('input[name="name"]', "");
  await page.fill('input[name="status"]', "logged in as bob");
  await page.click('button[type="submit"]');
  await shows(page, "bob", "logged in as bob");
  await page.screenshot({ path: screenshotPath("login.png") });
  await page.context().close();
});

test("20 pages opened at once all load and go live; the server sees one subscriber", { skip }, async () => {
  const s = await server();
  await set(s, "kim", "watching");
  const w = await web(s.endpoint);
  // A context each, as 20 screens are 20 browsers: one browser opens at
  // most 6 HTTP/1.1 connections to a host, and each page holds one (docs/WEB.md).
  const pages = await Promise.all(Array.from({ length: 20 }, async () => {
    const context = await browser.newContext({ viewport: { width: 800, height: 600 } });
    const page = await context.newPage();
    await page.goto(w.url);
    return page;
  }));
  await Promise.all(pages.map(async (page) => {
    await page.waitForSelector('#reach[data-state="live"]', { timeout: BOUND_MS });
    await shows(page, "kim", "watching");
  }));
  await set(s, "kim", "seen by all twenty");
  await Promise.all(pages.map((page) => shows(page, "kim", "seen by all twenty")));
  const publishPort = Number(s.publish.split(":").pop());
  assert.equal(connectionsTo(publishPort), 1, "one subscriber on the server's publisher");
  await Promise.all(pages.map((page) => page.context().close()));
});

test("200 names fit a 1080p screen in columns, without scrolling", { skip }, async () => {
  const s = await server();
  const w = await web(s.endpoint);
  for (let i = 0; i < 200; i++) {
    const body = new URLSearchParams({ name: `user-${String(i).padStart(3, "0")}`, status: `status text of user ${i}` });
    const response = await fetch(w.url + "status", { method: "POST", body });
    assert.equal(response.status, 200, await response.text());
  }
  for (const colorScheme of ["dark", "light"]) {
    const page = await open(w.url, { viewport: { width: 1920, height: 1080 }, colorScheme });
    await page.waitForFunction(() => document.getElementById("count").textContent === "200 names", null, { timeout: BOUND_MS });
    await shows(page, "user-199", "status text of user 199");
    // Two frames: the layout has run.
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    const fit = await page.evaluate(() => {
      const rows = [...document.querySelectorAll(".row")];
      const outside = rows.filter((r) => {
        const b = r.getBoundingClientRect();
        return b.left < 0 || b.top < 0 || b.right > innerWidth + 1 || b.bottom > innerHeight + 1;
      }).length;
      const board = document.getElementById("board");
      return {
        rows: rows.length,
        outside,
        columns: new Set(rows.map((r) => Math.round(r.getBoundingClientRect().left))).size,
        fontPx: parseFloat(getComputedStyle(board).fontSize),
        scrolls: document.documentElement.scrollHeight > innerHeight || board.scrollWidth > board.clientWidth + 1,
      };
    });
    assert.equal(fit.rows, 200);
    assert.equal(fit.outside, 0, JSON.stringify(fit));
    assert.equal(fit.scrolls, false, JSON.stringify(fit));
    assert.ok(fit.columns >= 3, `in columns: ${JSON.stringify(fit)}`);
    assert.ok(fit.fontPx >= 14, `readable: ${JSON.stringify(fit)}`);
    await page.screenshot({ path: screenshotPath(`board-200-${colorScheme}.png`) });
    await page.context().close();
  }
});

test("the login fields show from the start when the server wants logins, and not when it does not", { skip }, async () => {
  const users = await usersFile(["alice"]);
  const anonymous = await freePort();
  const withAuth = await server({ args: ["--auth", users, "--anonymous", `tcp://127.0.0.1:${anonymous}`] });
  const w = await web(withAuth.endpoint, ["--read-endpoint", `tcp://127.0.0.1:${anonymous}`, "--interval", "0.2"]);
  const page = await open(w.url);
  await page.waitForSelector('input[name="user"]', { state: "visible", timeout: BOUND_MS });
  assert.equal(await page.isVisible('input[name="password"]'), true);
  assert.equal(await page.textContent("#post-message"), "", "no post was made");
  await page.screenshot({ path: screenshotPath("login-fields.png") });
  await page.context().close();

  // An open server: no fields, even for a browser that kept a user from
  // before; and its post goes without a login, and is taken.
  const open_ = await server();
  const w2 = await web(open_.endpoint);
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  await context.addInitScript(() => localStorage.setItem("status-board-user", "alice"));
  const page2 = await context.newPage();
  await page2.goto(w2.url);
  await page2.waitForSelector(LIVE, { timeout: BOUND_MS });
  await page2.waitForSelector("#login", { state: "hidden", timeout: BOUND_MS });
  await page2.fill('input[name="name"]', "alice");
  await page2.fill('input[name="status"]', "no login needed");
  await page2.click('button[type="submit"]');
  await shows(page2, "alice", "no login needed");
  await context.close();
});

test("before the server is first heard the page says so, not that the board is empty", { skip }, async () => {
  const port = await freePort();
  const w = await web(`tcp://127.0.0.1:${port}`, ["--timeout", "300", "--retries", "1"]);
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  await page.goto(w.url);
  await page.waitForFunction(() => document.getElementById("reach").textContent === "no contact with the server yet",
    null, { timeout: BOUND_MS });
  const said = () => page.evaluate(() => getComputedStyle(document.getElementById("board"), "::after").content);
  assert.equal(await said(), '"No contact with the server yet: the board is not known."');
  assert.equal(await page.textContent("#count"), "", "no count of names not known");
  await page.screenshot({ path: screenshotPath("no-contact.png") });
  await server({ port });
  await page.waitForSelector(LIVE, { timeout: BOUND_MS });
  await page.waitForFunction(() => document.getElementById("count").textContent === "0 names", null, { timeout: BOUND_MS });
  assert.equal(await said(), '"Nobody has posted a status yet."');
  await context.close();
});

test("a name that expires on a polled board shows as expired", { skip }, async () => {
  const s = await server({ publish: null, args: ["--ttl", "1s"] });
  const w = await web(s.endpoint, ["--interval", "0.2"]);
  const page = await open(w.url);
  await set(s, "erin", "on a call");
  await shows(page, "erin", "on a call");
  await page.waitForSelector('.row.left[data-name="erin"]', { timeout: BOUND_MS });
  assert.equal(await page.textContent('.row.left[data-name="erin"] .status'), "expired");
  await page.context().close();
});

/** How the board is laid out now: type size, columns, and `name`'s status. */
async function layoutOf(page, name) {
  // Two frames: the layout has run.
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  return page.evaluate((name) => {
    const board = document.getElementById("board");
    const rows = [...document.querySelectorAll(".row")];
    const status = rows.find((r) => r.dataset.name === name).querySelector(".status");
    const lineHeight = parseFloat(getComputedStyle(status).lineHeight);
    const top = board.getBoundingClientRect().top;
    const clipped = (el) => el.scrollHeight > el.clientHeight + 1 || el.scrollWidth > el.clientWidth + 1;
    return {
      fontPx: parseFloat(getComputedStyle(board).fontSize),
      columns: new Set(rows.map((r) => Math.round(r.getBoundingClientRect().left))).size,
      lines: Math.round(status.getBoundingClientRect().height / lineHeight),
      whole: !clipped(status),
      cut: rows.filter((r) => clipped(r.querySelector(".status"))).length,
      usedHeight: Math.max(...rows.map((r) => r.getBoundingClientRect().bottom - top)) / board.clientHeight,
      scrolls: board.scrollWidth > board.clientWidth + 1 || board.scrollHeight > board.clientHeight + 1,
    };
  }, name);
}

/**
 * The layout with p2's status short, then with `long` (each once the page
 * shows it), and a screenshot of the second.
 */
async function shortThenLong(page, s, long, screenshot) {
  await set(s, "p2", "short 2");
  await shows(page, "p2", "short 2");
  const short = await layoutOf(page, "p2");
  await set(s, "p2", long);
  await shows(page, "p2", long);
  const wrapped = await layoutOf(page, "p2");
  console.log(screenshot, JSON.stringify({ short, wrapped }));
  await page.screenshot({ path: screenshotPath(screenshot) });
  return { short, wrapped };
}

test("a long status wraps to a second line while the type stays large (1920x1080)", { skip }, async () => {
  const LONG = "back at desk, reviewing PR #1234 for storage."; // 45 characters
  assert.equal(LONG.length, 45);
  const s = await server();
  for (let i = 0; i < 5; i++) await set(s, `p${i}`, `short ${i}`);
  const w = await web(s.endpoint);
  const page = await open(w.url, { viewport: { width: 1920, height: 1080 } });
  await shows(page, "p4", "short 4");
  const five = await shortThenLong(page, s, LONG, "wrap-5-names.png");
  // Before: one line at 64 px beside 120 px, the screen half empty.
  assert.equal(five.wrapped.lines, 2, JSON.stringify(five));
  assert.ok(five.wrapped.whole, JSON.stringify(five));
  assert.ok(five.wrapped.fontPx >= 0.75 * five.short.fontPx, JSON.stringify(five));
  assert.ok(five.wrapped.usedHeight >= 0.75, JSON.stringify(five));
  assert.equal(five.wrapped.scrolls, false);

  for (let i = 5; i < 40; i++) await set(s, `user-${i}`, "in the office");
  await shows(page, "user-39", "in the office");
  const forty = await shortThenLong(page, s, LONG, "wrap-40-names.png");
  // Before: the same type, the long status cut on one line.
  assert.equal(forty.wrapped.lines, 2, JSON.stringify(forty));
  assert.ok(forty.wrapped.fontPx >= 0.9 * forty.short.fontPx, JSON.stringify(forty));
  assert.ok(forty.wrapped.cut <= 4, "nine in ten whole");
  assert.equal(forty.wrapped.scrolls, false);
  await page.context().close();
});
