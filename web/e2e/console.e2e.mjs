// End-to-end: the built console (web/dist) served by a real `vigie-cloud` (embedded defaults: SQLite
// and the in-process MQTT broker, on free loopback ports) with a simulated `vigie-edge`, driven in
// Debian's headless Chromium by playwright-core. Binaries come from target/debug (`make test`
// builds them). Screenshots and process logs go to web/e2e-output/ (gitignored).
//
// The edge runs a synthetic camera (320x240 at 10 fps, clips of 4 s) pushing its live stream over
// RTSP to the cloud; `VIGIE_E2E_VIDEO=0` runs without it (and checks the camera-less dashboard),
// `VIGIE_E2E_LIVE=0` without the live stream only.
//
// 1. log in; the device shows online with its queue and clock (without video: no camera, no error);
//    the camera's tile plays the live stream (HLS through hls.js); a sensor's event shows its
//    snapshot and its clip (4 s, played and seeked through HTTP Range) in its detail, brought by the
//    media_ready frame while the detail is open;
// 2. a simulated button press appears as an alert: prints fire → screen and WebSocket → screen;
// 3. acknowledging it through the API takes the counter down;
// 4. the history lists it as acknowledged and its detail shows it;
// 5. an event stored while the console's socket is cut arrives by the catch-up after the reconnect
//    (received_since), exactly once; then live frames flow again;
// 6. the session renews itself before its (10 s) access token expires, and the console keeps going;
// 7. a camera that stops streaming shows its last image and says it is offline;
// 8. a wrong password, a French browser and phone in dark mode, a logout that ends the session on
//    the cloud, and an unreachable cloud each get their message.
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const WEB = resolve(new URL('..', import.meta.url).pathname);
const ROOT = resolve(WEB, '..');
const BIN = join(process.env.CARGO_TARGET_DIR ?? join(ROOT, 'target'), 'debug');
const OUT = join(WEB, 'e2e-output');
const CHROMIUM = process.env.VIGIE_CHROMIUM ?? '/usr/bin/chromium';
const USER = 'e2e-admin';
const PASSWORD = 'e2e-secret-password';
const DEVICE = 'e2e-pi';
const VIDEO = process.env.VIGIE_E2E_VIDEO !== '0';
/** `VIGIE_E2E_LIVE=0`: the camera records and uploads but pushes no live stream. */
const LIVE = VIDEO && process.env.VIGIE_E2E_LIVE !== '0';
/** The edge's camera: small frames, short clips (edge/CONFIG.md, Video). */
const VIDEO_CONFIG = `
[video]
source = "synthetic"
width = 320
height = 240
fps = 10
preroll_s = 2
clip_s = 4
max_clip_s = 8
`;
const CLIP_S = 4;

const children = [];
let mainPage = null;
const results = [];
let tmp;

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

function start(name, cmd, args, env) {
  const log = createWriteStream(join(OUT, `${name}.log`));
  const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  children.push(child);
  child.on('exit', (code, signal) => {
    if (!child.stopping) console.error(`e2e: ${name} exited (${code ?? signal}); see ${join(OUT, `${name}.log`)}`);
  });
  return child;
}

async function waitFor(what, check, timeoutMs = 30_000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      if (await check()) return;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push([name, true]);
    console.log(`e2e: ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push([name, false]);
    console.error(`e2e: FAIL ${name}: ${e.stack ?? e}`);
    if (mainPage) {
      const shown = await mainPage.locator('.notice, .error, [role=alert]').allInnerTexts().catch(() => []);
      console.error(`e2e: the main page shows: ${JSON.stringify(shown)} (browser console in browser-console.log)`);
      await mainPage.screenshot({ path: join(OUT, 'failure.png'), fullPage: true }).catch(() => {});
    }
    throw e;
  }
}

function check(cond, message) {
  if (!cond) throw new Error(message);
}

async function login(page, base) {
  await page.goto(`${base}/`);
  await page.getByLabel('User name').fill(USER);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('live-status').filter({ hasText: 'Live' }).waitFor({ timeout: 10_000 });
}

async function main() {
  mkdirSync(OUT, { recursive: true });
  tmp = mkdtempSync(join(tmpdir(), 'vigie-e2e-'));
  const [apiPort, mqttPort, edgePort, rtspPort, metricsPort] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  const base = `http://127.0.0.1:${apiPort}`;
  const edge = `http://127.0.0.1:${edgePort}`;
  // Nothing of the caller's VIGIE_* reaches the binaries (vigie-cloud refuses a name it does not know,
  // such as this test's own VIGIE_E2E_LIVE): only what is set below.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VIGIE_')));
  Object.assign(env, {
    VIGIE_LISTEN: `127.0.0.1:${apiPort}`,
    VIGIE_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
    VIGIE_MQTT_LISTEN: `127.0.0.1:${mqttPort}`,
    VIGIE_DATA_DIR: join(tmp, 'cloud'),
    VIGIE_CONSOLE_DIR: join(WEB, 'dist'),
    VIGIE_TOKEN_TTL_S: '10',
  });
  if (LIVE) env.VIGIE_RTSP_LISTEN = `127.0.0.1:${rtspPort}`;

  const add = spawnSync(join(BIN, 'vigie-cloud'), ['user', 'add', USER, '--role', 'admin', '--password-stdin'], {
    cwd: ROOT,
    env,
    input: `${PASSWORD}\n`,
    encoding: 'utf8',
  });
  check(add.status === 0, `vigie-cloud user add failed: ${add.stderr}`);
  // The bundle (MQTT password): the embedded broker authenticates every client.
  const bundles = join(tmp, 'bundles');
  const device = spawnSync(join(BIN, 'vigie-cloud'), ['device', 'add', DEVICE, '--out', bundles], { cwd: ROOT, env, encoding: 'utf8' });
  check(device.status === 0, `vigie-cloud device add failed: ${device.stderr}`);

  const cloud = start('cloud', join(BIN, 'vigie-cloud'), ['serve'], env);
  await waitFor('vigie-cloud /readyz', async () => (await fetch(`${base}/readyz`)).ok);
  const edgeEnv = {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VIGIE_'))),
    VIGIE_EDGE_DEVICE_ID: DEVICE,
    VIGIE_EDGE_MQTT_URL: `mqtt://127.0.0.1:${mqttPort}`,
    VIGIE_EDGE_API_URL: base,
    VIGIE_EDGE_TOKEN: device.stdout.trim(),
    VIGIE_EDGE_MQTT_PASSWORD_FILE: join(bundles, DEVICE, 'mqtt.password'),
    VIGIE_EDGE_DATA_DIR: join(tmp, 'edge'),
    VIGIE_EDGE_HTTP_LISTEN: `127.0.0.1:${edgePort}`,
  };
  let edgeConfig = 'edge/examples/simulated.toml';
  if (VIDEO) {
    edgeConfig = join(tmp, 'edge.toml');
    writeFileSync(edgeConfig, readFileSync(join(ROOT, 'edge/examples/simulated.toml'), 'utf8') + VIDEO_CONFIG);
    edgeEnv.VIGIE_EDGE_VIDEO_SOURCE = 'synthetic';
    if (LIVE) {
      edgeEnv.VIGIE_EDGE_LIVE_URL = `rtsp://127.0.0.1:${rtspPort}/live/${DEVICE}`;
      // The live push's own credential (never the API token).
      edgeEnv.VIGIE_EDGE_LIVE_TOKEN_FILE = join(bundles, DEVICE, 'live.token');
    }
  }
  const edgeProcess = start('edge', join(BIN, 'vigie-edge'), ['run', '--config', edgeConfig], edgeEnv);
  await waitFor('vigie-edge /healthz', async () => (await fetch(`${edge}/healthz`)).ok);
  const fire = async (kind = 'button') => {
    const r = await fetch(`${edge}/sim/${kind}`, { method: 'POST' });
    check(r.status === 201, `POST /sim/${kind} answered ${r.status}`);
    return (await r.json()).id;
  };

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--autoplay-policy=no-user-gesture-required'],
  });
  try {
    const context = await browser.newContext({ locale: 'en-GB', viewport: { width: 1280, height: 860 } });
    const page = await context.newPage();
    mainPage = page;
    page.on('pageerror', (e) => console.error(`e2e: page error: ${e.message}`));
    const pageLog = createWriteStream(join(OUT, 'browser-console.log'));
    page.on('console', (m) => pageLog.write(`${new Date().toISOString()} ${m.type()} ${m.text()}\n`));
    // The events named by media_ready frames, as the console's socket received them.
    const mediaReadyFor = new Set();
    page.on('websocket', (ws) =>
      ws.on('framereceived', ({ payload }) => {
        if (typeof payload !== 'string' || !payload.includes('"media_ready"')) return;
        for (const id of JSON.parse(payload).data?.event_ids ?? []) mediaReadyFor.add(id);
      }),
    );
    // Clip answers, to check that seeking uses HTTP Range (206).
    const clipStatuses = [];
    page.on('response', (r) => {
      if (new URL(r.url()).pathname.startsWith('/api/clips/')) clipStatuses.push(r.status());
    });

    await step(`log in and see the device online, its queue and clock${VIDEO ? '' : ', and no camera'}`, async () => {
      await login(page, base);
      const card = page.locator(`[data-device="${DEVICE}"]`);
      await card.locator('.badge', { hasText: 'Online' }).waitFor({ timeout: 15_000 });
      const text = await card.innerText();
      check(/Queue/.test(text) && /Clock/.test(text), `device card lacks queue or clock: ${text}`);
      if (!VIDEO) await page.getByTestId('no-camera').waitFor();
      await page.keyboard.press('Tab');
      check((await page.evaluate(() => document.activeElement?.className)) === 'skip', 'the first Tab does not reach the skip link');
      check((await page.locator('.error').count()) === 0, 'an error is shown on the dashboard');
      await page.screenshot({ path: join(OUT, '1-dashboard.png'), fullPage: true });
    });

    if (LIVE) {
      await step('the camera tile plays the live stream', async () => {
        const t0 = Date.now();
        const video = page.locator(`[data-camera="${DEVICE}"][data-live="true"] video`);
        // The tiles list the cameras again every 15 s: the stream may start after the first listing.
        await video.waitFor({ timeout: 60_000 });
        await waitFor('live frames shown (readyState >= 2)', () => video.evaluate((v) => v.readyState >= 2 && v.currentTime > 0), 60_000);
        const playingAfter = Date.now() - t0;
        // Watch it play for 5 s: it advances, and how often it waits for data (a rebuffer).
        const state = await video.evaluate(
          (v) =>
            new Promise((ok) => {
              let waits = 0;
              const onWaiting = () => waits++;
              v.addEventListener('waiting', onWaiting);
              const from = v.currentTime;
              setTimeout(() => {
                v.removeEventListener('waiting', onWaiting);
                const edge = v.seekable.length ? v.seekable.end(v.seekable.length - 1) : v.currentTime;
                ok({ advanced: v.currentTime - from, waits, behindEdge: edge - v.currentTime, w: v.videoWidth, h: v.videoHeight });
              }, 5_000);
            }),
        );
        check(state.advanced > 3.5, `the live video advanced ${state.advanced} s in 5 s`);
        check(state.w === 320 && state.h === 240, `the live video is ${state.w}x${state.h}, not the camera's 320x240`);
        console.log(
          `e2e: live view playing ${playingAfter} ms after the dashboard opened; ${state.behindEdge.toFixed(1)} s behind the playlist's live edge, ${state.waits} rebuffer(s) in 5 s`,
        );
        await page.locator(`[data-camera="${DEVICE}"]`).screenshot({ path: join(OUT, '1b-live-camera.png') });
      });
    }

    if (VIDEO) {
      await step(`a sensor's event shows its snapshot and its ${CLIP_S} s clip, which plays and seeks`, async () => {
        const id = await fire('button');
        const toast = page.locator(`[data-alert-id="${id}"]`);
        await toast.waitFor({ timeout: 5_000 });
        // Opened at once, before its media exist: they come while it is open.
        await toast.getByRole('button', { name: 'Details' }).click();
        const dialog = page.getByRole('dialog', { name: 'Event details' });
        await dialog.waitFor();
        const image = dialog.getByTestId('event-snapshot');
        await image.waitFor({ timeout: 30_000 });
        await waitFor('the snapshot decoded', () => image.evaluate((i) => i.complete && i.naturalWidth > 0), 10_000);
        const size = await image.evaluate((i) => [i.naturalWidth, i.naturalHeight]);
        check(size[0] === 320 && size[1] === 240, `the snapshot is ${size.join('x')}, not 320x240`);
        check((await image.getAttribute('alt'))?.startsWith(`Snapshot from ${DEVICE}`), 'the snapshot has no alt text');
        const clip = dialog.getByTestId('event-clip');
        await clip.waitFor({ timeout: 60_000 });
        check(mediaReadyFor.has(id), 'no media_ready frame named the event');
        const duration = await clip.evaluate(
          (v) =>
            new Promise((ok, fail) => {
              if (v.readyState >= 1) return ok(v.duration);
              v.addEventListener('loadedmetadata', () => ok(v.duration), { once: true });
              v.addEventListener('error', () => fail(new Error(`clip error ${v.error?.code}: ${v.error?.message}`)), { once: true });
            }),
        );
        console.log(`e2e: the event's clip lasts ${duration.toFixed(2)} s`);
        check(Math.abs(duration - CLIP_S) <= 1.5, `the clip lasts ${duration} s, not about ${CLIP_S} s`);
        await clip.evaluate((v) => {
          v.muted = true;
          return v.play();
        });
        await waitFor('the clip playing', async () => (await clip.evaluate((v) => v.currentTime)) > 0.3, 10_000);
        const seekTo = Math.max(0, duration - 1);
        const landed = await clip.evaluate(
          (v, to) =>
            new Promise((ok) => {
              v.addEventListener('seeked', () => ok(v.currentTime), { once: true });
              v.currentTime = to;
            }),
          seekTo,
        );
        check(Math.abs(landed - seekTo) < 0.6, `seeking to ${seekTo} s landed at ${landed} s`);
        check(clipStatuses.includes(206), `no clip answer was partial (206): ${clipStatuses.join(', ')}`);
        await page.screenshot({ path: join(OUT, '1c-event-media.png') });
        // Acknowledged, so the alert counts of the next steps start from zero.
        await dialog.getByRole('button', { name: 'Acknowledge' }).click();
        await page.locator(`[data-testid="unacked-counter"][aria-label="0 unacknowledged alerts"]`).waitFor({ timeout: 5_000 });
        await page.keyboard.press('Escape');
        await dialog.waitFor({ state: 'hidden' });
      });
    }

    let firstId;
    await step('a simulated button press appears as an alert within a second', async () => {
      const t0 = Date.now();
      firstId = await fire('button');
      const toast = page.locator(`[data-alert-id="${firstId}"]`);
      await toast.waitFor({ timeout: 5_000 });
      const fireToScreen = Date.now() - t0;
      const wsToAlert = await page.evaluate(async (id) => {
        for (let i = 0; i < 50 && performance.getEntriesByName(`vigie-alert:${id}`).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
        const ws = performance.getEntriesByName(`vigie-ws:${id}`)[0];
        const shown = performance.getEntriesByName(`vigie-alert:${id}`)[0];
        return ws && shown ? shown.startTime - ws.startTime : null;
      }, firstId);
      check(wsToAlert !== null, 'no WebSocket or alert timing mark');
      console.log(`e2e: WebSocket message → alert on screen: ${wsToAlert.toFixed(1)} ms`);
      console.log(`e2e: sensor fired (POST /sim/button) → alert on screen: ${fireToScreen} ms`);
      check(fireToScreen <= 1000, `the alert took ${fireToScreen} ms to appear`);
      check((await toast.innerText()).includes('Pressure mat'), 'the toast does not say what happened');
      const label = await page.getByTestId('unacked-counter').getAttribute('aria-label');
      check(label === '1 unacknowledged alerts', `counter says ${label}`);
      await page.screenshot({ path: join(OUT, '2-alert.png') });
    });

    await step('acknowledging the alert takes the counter down', async () => {
      await page.locator(`[data-alert-id="${firstId}"]`).getByRole('button', { name: /^Acknowledge/ }).click();
      await page.locator(`[data-testid="unacked-counter"][aria-label="0 unacknowledged alerts"]`).waitFor({ timeout: 5_000 });
      check((await page.locator(`[data-alert-id="${firstId}"]`).count()) === 0, 'the toast stayed');
      const r = await fetch(`${base}/api/events?acknowledged=false`, {
        headers: { Authorization: `Bearer ${await page.evaluate(() => JSON.parse(sessionStorage.getItem('vigie.session')).token)}` },
      });
      const unacked = (await r.json()).items.map((e) => e.id);
      check(!unacked.includes(firstId), 'the cloud still lists the event as unacknowledged');
    });

    await step('the history lists the event as acknowledged and opens its detail', async () => {
      await page.getByRole('link', { name: 'History' }).click();
      const row = page.getByTestId('history-list').locator(`[data-event-id="${firstId}"]`);
      await row.waitFor({ timeout: 5_000 });
      check((await row.innerText()).includes(`Acknowledged by ${USER}`), `row says: ${await row.innerText()}`);
      await page.getByLabel('Kind').selectOption('motion');
      await page.getByRole('button', { name: 'Apply' }).click();
      await page.getByText('No event matches these filters.').waitFor({ timeout: 5_000 });
      await page.getByLabel('Kind').selectOption('button_pressed');
      await page.getByLabel('Device').selectOption(DEVICE);
      await page.getByRole('button', { name: 'Apply' }).click();
      await row.click();
      const dialog = page.getByRole('dialog', { name: 'Event details' });
      await dialog.waitFor();
      const text = await dialog.innerText();
      for (const want of [firstId, DEVICE, 'mat-1', 'Pressure mat', USER]) check(text.includes(want), `detail lacks ${want}: ${text}`);
      await page.screenshot({ path: join(OUT, '3-history-detail.png') });
      await page.keyboard.press('Escape');
      await dialog.waitFor({ state: 'hidden' });
    });

    await step('an event stored while the socket is cut arrives by the catch-up, once', async () => {
      const p2 = await context.newPage();
      let blocked = false;
      const routes = [];
      await p2.routeWebSocket(/\/api\/stream/, (ws) => {
        if (blocked) {
          ws.close({ code: 4000, reason: 'e2e: link down' });
          return;
        }
        ws.connectToServer();
        routes.push(ws);
      });
      await login(p2, base);
      blocked = true;
      for (const ws of routes) await ws.close({ code: 4000, reason: 'e2e: link down' });
      await p2.getByTestId('live-status').filter({ hasText: /retrying|Connecting/ }).waitFor({ timeout: 5_000 });
      const missedId = await fire('motion');
      const token = await p2.evaluate(() => JSON.parse(sessionStorage.getItem('vigie.session')).token);
      await waitFor('the missed event stored', async () => {
        const r = await fetch(`${base}/api/events?device=${DEVICE}&kind=motion`, { headers: { Authorization: `Bearer ${token}` } });
        return (await r.json()).items.some((e) => e.id === missedId);
      });
      await new Promise((r) => setTimeout(r, 300));
      blocked = false;
      await p2.locator(`[data-alert-id="${missedId}"]`).waitFor({ timeout: 40_000 });
      await p2.getByTestId('live-status').filter({ hasText: 'Live' }).waitFor({ timeout: 40_000 });
      const viaSocket = await p2.evaluate((id) => performance.getEntriesByName(`vigie-ws:${id}`).length, missedId);
      check(viaSocket === 0, 'the missed event came over the socket, not the catch-up');
      const label = await p2.getByTestId('unacked-counter').getAttribute('aria-label');
      check(label === '1 unacknowledged alerts', `counter after the catch-up says ${label}`);
      await p2.screenshot({ path: join(OUT, '4-caught-up.png') });
      const liveId = await fire('button');
      await p2.locator(`[data-alert-id="${liveId}"]`).waitFor({ timeout: 5_000 });
      const live = await p2.evaluate((id) => performance.getEntriesByName(`vigie-ws:${id}`).length, liveId);
      check(live === 1, 'after the reconnect the next event did not come over the socket');
      check(
        (await p2.getByTestId('unacked-counter').getAttribute('aria-label')) === '2 unacknowledged alerts',
        'the counter does not count each event once',
      );
      await p2.close();
    });

    await step('the session renews itself before its access token expires, and the console keeps going', async () => {
      const token = () => page.evaluate(() => JSON.parse(sessionStorage.getItem('vigie.session')).token);
      const first = await token();
      await waitFor('a renewed access token', async () => (await token()) !== first, 15_000);
      await new Promise((r) => setTimeout(r, 3_000));
      check((await page.getByLabel('Password').count()) === 0, 'the console went back to the login screen');
      const r = await fetch(`${base}/api/devices`, { headers: { Authorization: `Bearer ${await token()}` } });
      check(r.ok, `the renewed token is refused: ${r.status}`);
      const id = await fire('button');
      await page.locator(`[data-alert-id="${id}"]`).waitFor({ timeout: 5_000 });
      // The history page is still open: the new event goes on top of its list, live.
      const top = page.getByTestId('history-list').locator('li').first().locator(`[data-event-id="${id}"]`);
      await top.waitFor({ timeout: 5_000 });
    });

    await step('the history loads its next cursor page as the list scrolls', async () => {
      const ids = [];
      // 5 rounds of 11 at once: the edge's group commit makes a round cost about one disk sync.
      for (let round = 0; round < 5; round++) ids.push(...(await Promise.all(Array.from({ length: 11 }, () => fire('motion')))));
      const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem('vigie.session')).token);
      await waitFor('55 motion events stored', async () => {
        const r = await fetch(`${base}/api/events?kind=motion&limit=1000`, { headers: { Authorization: `Bearer ${token}` } });
        const stored = new Set((await r.json()).items.map((e) => e.id));
        return ids.every((id) => stored.has(id));
      });
      await page.getByRole('button', { name: 'Reset' }).click();
      const rows = page.getByTestId('history-list').locator('li');
      await waitFor('the first page of 50', async () => (await rows.count()) === 50, 10_000);
      await rows.last().scrollIntoViewIfNeeded();
      await waitFor('the next page after scrolling', async () => (await rows.count()) > 50, 10_000);
      await page.getByText('End of history.').waitFor({ timeout: 10_000 });
      const listed = await rows.count();
      check(listed >= 58, `only ${listed} events listed after scrolling`);
      const listedIds = await page.getByTestId('history-list').locator('[data-event-id]').evaluateAll((b) => b.map((x) => x.dataset.eventId));
      check(new Set(listedIds).size === listedIds.length, 'an event is listed twice');
      await page.screenshot({ path: join(OUT, '4b-history-pages.png') });
    });

    if (VIDEO) {
      await step('a camera that stops streaming shows its last image and says it is offline', async () => {
        await page.getByRole('link', { name: 'Dashboard' }).click();
        // Live first (when streaming), so the tile must notice the stream's end by itself.
        if (LIVE) {
          const live = page.locator(`[data-camera="${DEVICE}"][data-live="true"] video`);
          await live.waitFor({ timeout: 30_000 });
          await waitFor('the live view playing again', () => live.evaluate((v) => v.readyState >= 2 && v.currentTime > 0), 30_000);
        }
        const t0 = Date.now();
        edgeProcess.stopping = true;
        edgeProcess.kill('SIGTERM');
        const tile = page.locator(`[data-camera="${DEVICE}"][data-live="false"]`);
        await tile.waitFor({ timeout: 60_000 });
        console.log(`e2e: the tile says the camera is offline ${Date.now() - t0} ms after the edge stopped`);
        const text = await tile.getByTestId('camera-offline').innerText();
        check(text.startsWith('Offline — last image at'), `the offline tile says: ${text}`);
        const last = tile.getByTestId('last-image');
        await waitFor('the last image decoded', () => last.evaluate((i) => i.complete && i.naturalWidth > 0), 10_000);
        await page.locator(`[data-camera="${DEVICE}"]`).screenshot({ path: join(OUT, '6a-camera-offline.png') });
      });
    }

    await step('a wrong password, a French phone in dark mode, a logout and an unreachable cloud each get their message', async () => {
      const fr = await browser.newContext({ locale: 'fr-FR', colorScheme: 'dark', viewport: { width: 390, height: 844 } });
      const p = await fr.newPage();
      await p.goto(`${base}/`);
      await p.getByLabel("Nom d'utilisateur").fill(USER);
      await p.getByLabel('Mot de passe').fill('wrong');
      await p.getByRole('button', { name: 'Se connecter' }).click();
      await p.getByRole('alert').filter({ hasText: "Nom d'utilisateur ou mot de passe incorrect." }).waitFor();
      await p.getByLabel('Mot de passe').fill(PASSWORD);
      await p.getByRole('button', { name: 'Se connecter' }).click();
      await p.getByTestId('live-status').filter({ hasText: 'En direct' }).waitFor({ timeout: 10_000 });
      await p.screenshot({ path: join(OUT, '5-phone-dark-fr.png'), fullPage: true });
      const token = await p.evaluate(() => JSON.parse(sessionStorage.getItem('vigie.session')).token);
      await p.getByRole('button', { name: 'Se déconnecter' }).click();
      await p.getByText('Vous êtes déconnecté.').waitFor();
      const after = await fetch(`${base}/api/devices`, { headers: { Authorization: `Bearer ${token}` } });
      check(after.status === 401, `the token still works after logout (${after.status})`);
      cloud.stopping = true;
      cloud.kill('SIGKILL'); // a dead cloud, not a graceful stop (which waits for open sockets)
      await new Promise((r) => cloud.once('exit', r));
      await p.getByLabel("Nom d'utilisateur").fill(USER);
      await p.getByLabel('Mot de passe').fill(PASSWORD);
      await p.getByRole('button', { name: 'Se connecter' }).click();
      await p.getByRole('alert').filter({ hasText: 'Impossible de joindre le cloud Vigie' }).waitFor();
      await p.screenshot({ path: join(OUT, '6-unreachable.png'), fullPage: true });
      await fr.close();
    });
  } finally {
    await browser.close();
  }
}

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  if (!results.some(([, ok]) => !ok)) console.error(`e2e: ${e.stack ?? e}`);
} finally {
  for (const c of children) {
    c.stopping = true;
    if (c.exitCode === null) c.kill('SIGTERM');
  }
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : null)));
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}
const passed = results.filter(([, ok]) => ok).length;
console.log(`e2e: screenshots and logs in ${OUT}`);
console.log(`e2e: ${passed} passed, ${results.length - passed + (failed && results.every(([, ok]) => ok) ? 1 : 0)} failed`);
process.exit(failed ? 1 : 0);
