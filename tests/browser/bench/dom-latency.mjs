// For the benchmark harness (benches/harness.rs, section `web`): opens
// status_web's page in headless Chromium and prints, for each status
// `bench-dom vN` that appears on the board, `seen N T` where T is when the
// page's DOM had it (ms since the Unix epoch, the browser's clock: the same
// machine's as the harness's). Usage: node dom-latency.mjs URL
import { launch } from "../harness.mjs";

const url = process.argv[2];
const browser = await launch();
const page = await browser.newPage();
page.on("console", (message) => {
  const text = message.text();
  if (text.startsWith("seen ")) console.log(text);
});
await page.goto(url);
await page.waitForSelector('#reach[data-state="live"]', { timeout: 15000 });
await page.evaluate(() => {
  const seen = new Set();
  new MutationObserver(() => {
    const at = performance.timeOrigin + performance.now();
    for (const status of document.querySelectorAll(".row .status")) {
      const m = /^bench-dom v(\d+)$/.exec(status.textContent);
      if (m && !seen.has(m[1])) {
        seen.add(m[1]);
        console.log(`seen ${m[1]} ${at.toFixed(3)}`);
      }
    }
  }).observe(document.getElementById("board"), { subtree: true, childList: true, characterData: true });
});
console.log("ready");
// Until the harness closes stdin.
process.stdin.resume();
process.stdin.on("end", async () => { await browser.close(); process.exit(0); });
