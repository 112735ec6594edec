// Opens a built leaderboard site from file:// in headless Debian Chromium (via playwright-core)
// and prints a JSON report: console and page errors, dialogs, network attempts, plots drawn,
// thumbnails loaded, how sorting the overall table behaved, and the screenshots it saved.
//
//   node check_site.mjs --site SITE --out SCREENSHOT_DIR [--expect-text TEXT]... [--screenshot PAGE]...
//
// Screenshots: the index, every task page, the first model's page and its first page of
// samples per task, and each --screenshot PAGE (a path from the site root).
//
// The pytest side (tests/test_leaderboard_browser.py) asserts on the report.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const MAX_PAGES = 400;

function parseArgs(argv) {
  const options = { expectText: [], screenshot: [] };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === "--site") options.site = path.resolve(value);
    else if (flag === "--out") options.out = path.resolve(value);
    else if (flag === "--expect-text") options.expectText.push(value);
    else if (flag === "--screenshot") options.screenshot.push(value);
    else throw new Error(`unknown option ${flag}`);
  }
  if (!options.site || !options.out) throw new Error("usage: --site SITE --out DIR");
  return options;
}

function htmlPages(root) {
  const found = [];
  const walk = (folder) => {
    for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
      const full = path.join(folder, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith(".html")) found.push(path.relative(root, full));
    }
  };
  walk(root);
  return found.sort().slice(0, MAX_PAGES);
}

// Every drawn series shape in the page's charts, with its bounding box.
async function chartShapes(page) {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll("svg.chart")).map((svg) => {
      const shapes = Array.from(svg.querySelectorAll(".series path, .series polygon, .series circle"));
      const boxes = shapes.map((shape) => {
        const box = shape.getBBox();
        return { tag: shape.tagName, width: box.width, height: box.height };
      });
      return {
        title: svg.getAttribute("aria-label"),
        shapes: boxes.length,
        drawn: boxes.filter((box) => box.width > 0 && box.height > 0).length,
      };
    })
  );
}

async function images(page) {
  return page.evaluate(async () => {
    const all = Array.from(document.images);
    for (const image of all) {
      image.loading = "eager"; // lazy images below the fold would otherwise never load
    }
    await Promise.all(all.map((image) => (image.complete ? null : image.decode().catch(() => null))));
    return {
      total: all.length,
      broken: all.filter((image) => !image.complete || image.naturalWidth === 0).map((image) => image.getAttribute("src")),
    };
  });
}

async function columnKeys(page, tableId, index) {
  return page.evaluate(
    ([id, column]) =>
      Array.from(document.getElementById(id).tBodies[0].rows).map(
        (row) => row.cells[column].getAttribute("data-sort-value") || ""
      ),
    [tableId, index]
  );
}

function isOrdered(keys, direction, numeric) {
  const present = keys.filter((key) => key !== "");
  const missingLast = keys.slice(present.length).every((key) => key === "");
  const sign = direction === "ascending" ? 1 : -1;
  const compare = numeric
    ? (a, b) => parseFloat(a) - parseFloat(b)
    : (a, b) => a.localeCompare(b, undefined, { numeric: true, sensitivity: "base" });
  for (let i = 1; i < present.length; i++) {
    if (sign * compare(present[i - 1], present[i]) > 0) return false;
  }
  return missingLast;
}

// Sort the overall table by a numeric column (mouse, twice) and the model column (keyboard).
async function checkSorting(page) {
  const headers = await page.$$eval("#overall thead th", (cells) =>
    cells.map((cell) => ({
      label: cell.textContent.trim(),
      type: cell.getAttribute("data-type"),
      first: cell.getAttribute("data-first"),
    }))
  );
  const numericIndex = headers.findIndex((header) => header.type === "number");
  const result = { headers: headers.length, steps: [] };
  if (numericIndex < 0) return result;
  const before = await columnKeys(page, "overall", numericIndex);
  const button = page.locator("#overall thead th").nth(numericIndex).locator("button");
  for (const click of [1, 2]) {
    await button.click();
    const keys = await columnKeys(page, "overall", numericIndex);
    const ariaSort = await page.locator("#overall thead th").nth(numericIndex).getAttribute("aria-sort");
    result.steps.push({
      column: headers[numericIndex].label,
      input: "click",
      click,
      aria_sort: ariaSort,
      keys,
      ordered: isOrdered(keys, ariaSort, true),
      same_values: [...keys].sort().join() === [...before].sort().join(),
    });
  }
  const textIndex = headers.findIndex((header) => header.type === "text");
  const textButton = page.locator("#overall thead th").nth(textIndex).locator("button");
  await textButton.focus();
  await page.keyboard.press("Enter");
  const keys = await columnKeys(page, "overall", textIndex);
  const ariaSort = await page.locator("#overall thead th").nth(textIndex).getAttribute("aria-sort");
  result.steps.push({
    column: headers[textIndex].label,
    input: "keyboard",
    click: 1,
    aria_sort: ariaSort,
    keys,
    ordered: isOrdered(keys, ariaSort, false),
    same_values: true,
  });
  return result;
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  fs.mkdirSync(options.out, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "fiqabench-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 900 },
  });
  const report = { chromium: context.browser()?.version() ?? null, pages: [], sorting: null, screenshots: [] };
  try {
    const pages = htmlPages(options.site);
    const firstModel = pages.find((name) => /^models\/[^/]+\.html$/.test(name));
    const firstSamples = firstModel ? firstModel.replace(/\.html$/, "/") : null;
    const screenshotOf = new Set([
      "index.html",
      ...pages.filter((name) => name.startsWith("tasks/")),
      firstModel,
      ...pages.filter((name) => firstSamples && name.startsWith(firstSamples) && name.endsWith("-1.html")),
      ...options.screenshot,
    ]);
    for (const name of pages) {
      const page = await context.newPage();
      const found = { path: name, console_errors: [], page_errors: [], dialogs: [], blocked_requests: [] };
      page.on("console", (message) => {
        if (message.type() === "error") found.console_errors.push(message.text());
      });
      page.on("pageerror", (error) => found.page_errors.push(String(error)));
      page.on("dialog", async (dialog) => {
        found.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
        await dialog.dismiss();
      });
      // The site must need no network: anything but file:// is recorded and refused.
      await page.route("**/*", (route) => {
        const url = route.request().url();
        if (url.startsWith("file://")) return route.continue();
        found.blocked_requests.push(url);
        return route.abort();
      });
      await page.goto(pathToFileURL(path.join(options.site, name)).href, { waitUntil: "load" });
      found.title = await page.title();
      found.charts = await chartShapes(page);
      found.images = await images(page);
      found.scripts_ran = await page.evaluate(
        () => Array.from(document.querySelectorAll("th[aria-sort]")).length
      );
      if (name === "index.html") {
        const text = await page.evaluate(() => document.body.innerText);
        found.expected_text = Object.fromEntries(options.expectText.map((t) => [t, text.includes(t)]));
        found.injected_images = await page.evaluate(() => document.querySelectorAll('img[src="x"]').length);
        report.sorting = await checkSorting(page);
      }
      if (screenshotOf.has(name)) {
        const file = path.join(options.out, name.replace(/[\\/]/g, "__").replace(/\.html$/, ".png"));
        await page.screenshot({ path: file, fullPage: true });
        report.screenshots.push(file);
      }
      report.pages.push(found);
      await page.close();
    }
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(report, null, 1) + "\n");
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
