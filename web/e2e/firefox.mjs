// The web console in Debian's Firefox ESR at 1366x768, driven over WebDriver BiDi by
// puppeteer-core (Firefox's own remote protocol: no patched browser, no download). Run by
// tests/console/test_firefox.py against a served console:
//   node web/e2e/firefox.mjs BASE_URL USER PASSWORD SCREENSHOT_DIR FIREFOX_PATH
// Prints one JSON line: the pages seen and every URL the browser requested; exits 1 with the
// reason when a page is not what a physicist should see.
import { mkdirSync } from "node:fs";
import puppeteer from "puppeteer-core";

const [base, user, password, shots, firefox] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath: firefox,
  headless: true,
  defaultViewport: { width: 1366, height: 768 },
});
const requested = [];
const seen = [];

function expect(condition, what) {
  if (!condition) throw new Error(what);
}

async function visit(page, path, heading, name) {
  await page.goto(`${base}${path}`, { waitUntil: "load" });
  const h1 = await page.$eval("h1", (e) => e.textContent.trim());
  expect(h1.startsWith(heading), `${path}: heading ${JSON.stringify(h1)}, not ${heading}`);
  await page.screenshot({ path: `${shots}/firefox-${name}.png`, fullPage: true });
  seen.push(path);
  return page;
}

try {
  const page = await browser.newPage();
  page.on("request", (r) => requested.push(r.url()));
  await page.goto(`${base}/`, { waitUntil: "load" });
  expect(page.url().startsWith(`${base}/sign-in`), `not sent to sign in: ${page.url()}`);
  await page.type("#name", user);
  await page.type("#password", password);
  await Promise.all([page.waitForNavigation(), page.click("form button[type=submit]")]);
  expect(page.url() === `${base}/`, `not signed in: ${page.url()}`);

  await visit(page, "/", "Kerma at a glance", "home");
  await visit(page, "/studies?modality=CT", "Studies", "studies");
  const status = await page.$eval("[role=status]", (e) => e.textContent.trim());
  expect(status.startsWith("1 study"), `studies: ${status}`);
  await Promise.all([page.waitForNavigation(), page.click("tbody tr a")]);
  const study = await page.$eval("main", (e) => e.innerText);
  expect(study.includes("Compared with the diagnostic reference levels"), "the study page");
  await page.screenshot({ path: `${shots}/firefox-study.png`, fullPage: true });

  await visit(page, "/analysis?from=1990-01-01", "Analysis", "analysis");
  await page.waitForFunction(
    () => [...document.querySelectorAll("figure img")].every((i) => i.complete && i.naturalWidth > 0),
  );
  const compliance = await page.$eval("table", (e) => e.innerText);
  expect(compliance.includes("no, above"), "the DRL compliance table");
  for (const [path, heading, name] of [
    ["/alerts", "Alerts", "alerts"],
    ["/classification", "Classification workbench", "classification"],
    ["/reports", "Reports", "reports"],
    ["/setup/devices", "Set-up: devices", "setup-devices"],
  ]) {
    await visit(page, path, heading, name);
  }
  await Promise.all([page.waitForNavigation(), page.click("header form.who button")]);
  expect(page.url().startsWith(`${base}/sign-in`), `not signed out: ${page.url()}`);
  console.log(JSON.stringify({ seen, requested }));
} catch (error) {
  console.error(error.message);
  process.exitCode = 1;
} finally {
  await browser.close();
}
