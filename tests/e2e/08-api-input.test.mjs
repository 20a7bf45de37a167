// Scenario 8: the page API refuses bad input with the documented errors:
// TypeError for a bad session identifier; `code` 'invalid-input' for a non-http(s)
// URL, a URL with credentials and a header value with CR/LF; 'not-found' for an
// unknown id; cancel is idempotent (true, then false); removing a running task is
// 'invalid-state'. Ends, like every scenario, with a download whose bytes are checked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './helpers.mjs';

let server;
before(async () => { server = await h.startServer(); });
after(async () => { await server?.stop(); });

/** Run `expr` (a function body using `s`, the session, and `B`, BackgroundSession) in the page; report how it settled. */
async function settle(page, body, arg) {
  return page.evaluate(async ([src, a]) => {
    const { BackgroundSession: B } = await import('/pkg/longhaul.js');
    const s = window.longhaulSession;
    // eslint-disable-next-line no-new-func
    const fn = new Function('s', 'B', 'arg', `return (async () => { ${src} })();`);
    try {
      const value = await fn(s, B, a);
      return { ok: true, value: value === undefined ? null : value };
    } catch (e) {
      return { ok: false, name: e?.name, isTypeError: e instanceof TypeError, code: e?.code ?? null, message: String(e?.message ?? e) };
    }
  }, [body, arg]);
}

function assertRejects(r, code, what) {
  assert.equal(r.ok, false, `${what} must reject; it resolved with ${JSON.stringify(r.value)}`);
  assert.equal(r.code, code, `${what} rejects with code ${code}: ${JSON.stringify(r)}`);
}

test('the API checks its input', { timeout: 90_000 }, async () => {
  const browser = await h.launchChromium();
  const lines = h.collectConsole(browser.context);
  try {
    await h.withConsole(lines, async () => {
      const page = await browser.context.newPage();
      await h.openDemo(page, server.origin);

      for (const [src, what] of [["return B.open('')", "open('')"], ['return B.open(42)', 'open(42)']]) {
        const r = await settle(page, src);
        assert.equal(r.ok, false, `${what} must reject`);
        assert.equal(r.isTypeError, true, `${what} rejects with a TypeError: ${JSON.stringify(r)}`);
      }

      assertRejects(await settle(page, "return s.download('ftp://x/y')"), 'invalid-input', "download('ftp://x/y')");
      assertRejects(await settle(page, "return s.download('https://u:p@h/x')"), 'invalid-input', "download('https://u:p@h/x')");
      const file0 = h.uniquePath('api-header');
      assertRejects(await settle(page, "return s.download(arg, { headers: { 'X-Test': 'a\\r\\nb' } })", `${file0}?size=1M`),
        'invalid-input', 'a header value with CR/LF');
      assertRejects(await settle(page, "return s.download(arg, { headers: [['X-Test', 'a\\nb']] })", `${file0}?size=1M`),
        'invalid-input', 'a header value with LF (pairs)');
      assert.equal((await server.log(file0)).length, 0, 'refused downloads never hit the network');
      const noTask = (await h.tasks(page)).filter((s) => s.url.includes(file0) || s.url.startsWith('ftp:') || s.url.includes('u:p@'));
      assert.deepEqual(noTask, [], 'refused downloads leave no task');

      assertRejects(await settle(page, "return s.pause('no-such-id')"), 'not-found', "pause('no-such-id')");
      // Session configuration and task options.
      assertRejects(await settle(page, "return B.open('demo', { retyr: {} })"), 'invalid-input', 'an unknown configuration key');
      assertRejects(await settle(page, "return B.open('demo', { retry: { maxAttempts: -1 } })"), 'invalid-input', 'a negative maxAttempts');
      assertRejects(await settle(page, "return B.open('demo', { retry: { jitter: 2 } })"), 'invalid-input', 'a jitter above 1');
      const badConfig = await settle(page, "return B.open('demo', 5)");
      assert.ok(!badConfig.ok && badConfig.isTypeError, `a non-object configuration is a TypeError: ${JSON.stringify(badConfig)}`);
      for (const bad of ['-1', '0.5', 'NaN', '2 ** 60']) {
        assertRejects(await settle(page, `return s.download(arg, { maxBytes: ${bad} })`, `${file0}?size=1M`), 'invalid-input', `maxBytes ${bad}`);
      }
      const badMax = await settle(page, "return s.download(arg, { maxBytes: '10' })", `${file0}?size=1M`);
      assert.ok(!badMax.ok && badMax.isTypeError, `a non-number maxBytes is a TypeError: ${JSON.stringify(badMax)}`);
      // FAULTS 23-27: identifiers, URLs, headers, sizes, integrity, budgets, credentials.
      const long = await settle(page, "return B.open('x'.repeat(1025))");
      assert.ok(!long.ok && long.isTypeError, `a 1025-character identifier is a TypeError: ${JSON.stringify(long)}`);
      assertRejects(await settle(page, "return s.download('http://[bad')"), 'invalid-input', 'an unparsable URL');
      for (const [headers, what] of [
        ["{ Cookie: 'a=b' }", 'a forbidden header'],
        ["{ Range: 'bytes=0-' }", 'a Range header (longhaul sets it)'],
        ["{ 'Bad Name': 'v' }", 'a header name with a space'],
        ["{ 'X-Big': 'v'.repeat(20000) }", 'a huge header block'],
        ["Object.fromEntries(Array.from({ length: 65 }, (_, i) => ['x-h' + i, 'v']))", 'too many headers'],
      ]) {
        assertRejects(await settle(page, `return s.download(arg, { headers: ${headers} })`, `${file0}?size=1M`), 'invalid-input', what);
      }
      for (const bad of ["'sha256-short'", "'md5-1B2M2Y8AsgTpgAmY7PhCfg=='", "''"]) {
        assertRejects(await settle(page, `return s.download(arg, { integrity: ${bad} })`, `${file0}?size=1M`), 'invalid-input', `integrity ${bad}`);
      }
      for (const [opt, what] of [
        ['{ integrity: 5 }', 'a non-string integrity'],
        ["{ sensitiveHeaders: 'x-key' }", 'sensitiveHeaders not an array'],
        ["{ persistCredentials: 'yes' }", 'a non-boolean persistCredentials'],
      ]) {
        const r = await settle(page, `return s.download(arg, ${opt})`, `${file0}?size=1M`);
        assert.ok(!r.ok && r.isTypeError, `${what} is a TypeError: ${JSON.stringify(r)}`);
      }
      assertRejects(await settle(page, "return s.download(arg, { sensitiveHeaders: ['bad name'] })", `${file0}?size=1M`),
        'invalid-input', 'a bad sensitive header name');
      for (const bad of ['0', '-5', '1.5', "'big'", '2 ** 60']) {
        assertRejects(await settle(page, `return B.open('demo', { byteBudget: ${bad} })`), 'invalid-input', `byteBudget ${bad}`);
      }
      for (const [config, what] of [
        ['{ maxConnectionsPerHost: 0 }', 'maxConnectionsPerHost 0'],
        ['{ maxConnectionsPerHost: 65 }', 'maxConnectionsPerHost 65'],
        ['{ resourceTimeout: 10 }', 'a resourceTimeout under 1 s'],
        ["{ headers: { Authorization: 'Bearer x' } }", 'Authorization in the stored session headers'],
        ["{ headers: { 'X-A': 'a\\nb' } }", 'a session header with LF'],
      ]) {
        assertRejects(await settle(page, `return B.open('demo', ${config})`), 'invalid-input', what);
      }
      for (const bad of ['-0.5', '2', 'NaN']) {
        assertRejects(await settle(page, `return s.download(arg, { priority: ${bad} })`, `${file0}?size=1M`), 'invalid-input', `priority ${bad}`);
      }
      assertRejects(await settle(page, "return s.download(arg, { earliestBegin: new Date('nope') })", `${file0}?size=1M`), 'invalid-input', 'an invalid Date');
      assertRejects(await settle(page, 'return s.download(arg, { expectedBytes: 2 ** 60 })', `${file0}?size=1M`), 'invalid-input', 'expectedBytes over 2^53');
      assertRejects(await settle(page, 'return s.download(arg, { expectedBytes: 2 ** 52 })', `${file0}?size=1M`), 'quota', 'expectedBytes beyond the storage estimate');
      const badBegin = await settle(page, "return s.download(arg, { earliestBegin: 'tomorrow' })", `${file0}?size=1M`);
      assert.ok(!badBegin.ok && badBegin.isTypeError, `a string earliestBegin is a TypeError: ${JSON.stringify(badBegin)}`);
      assert.equal((await server.log(file0)).length, 0, 'refused downloads never hit the network');
      assert.deepEqual((await h.tasks(page)).filter((s) => s.url.includes(file0)), [], 'and leave no task');
      // A task of one session is not found from another (FAULTS 27).
      const file2x = h.uniquePath('api-other-session');
      const mine = await h.download(page, `${file2x}?size=1M`);
      const other = await settle(page, "const o = await B.open('another-session'); const t = await o.task(arg); let r; try { await o.cancel(arg); r = 'canceled'; } catch (e) { r = e.code; } o.close(); return { t, r };", mine.id);
      assert.deepEqual(other, { ok: true, value: { t: null, r: 'not-found' } }, JSON.stringify(other));
      await h.waitCompleted(page, mine.id);

      // Cancel twice: true, then false.
      const file1 = h.uniquePath('api-cancel');
      const c = await h.download(page, `${file1}?size=64M&rate=1M`);
      const first = await settle(page, 'return s.cancel(arg)', c.id);
      const second = await settle(page, 'return s.cancel(arg)', c.id);
      assert.deepEqual(first, { ok: true, value: true }, `the first cancel resolves true: ${JSON.stringify(first)}`);
      assert.deepEqual(second, { ok: true, value: false }, `the second cancel resolves false: ${JSON.stringify(second)}`);
      const canceled = await h.task(page, c.id);
      assert.equal(canceled.state, 'canceled', JSON.stringify(canceled));

      // Removing a running task is refused; once canceled it can be removed.
      const file2 = h.uniquePath('api-remove');
      const r = await h.download(page, `${file2}?size=64M&rate=1M`);
      const running = await h.waitTask(page, r.id, (s) => s.state === 'running' && s.bytesReceived > 0, { what: 'running with bytes', timeout: 20_000 });
      assertRejects(await settle(page, 'return s.remove(arg)', r.id), 'invalid-state', `remove of a running task ${JSON.stringify(running)}`);
      const stillThere = await h.task(page, r.id);
      assert.ok(stillThere && ['running', 'pending', 'waiting'].includes(stillThere.state), `the refused remove left the task alone: ${JSON.stringify(stillThere)}`);
      assert.deepEqual(await settle(page, 'return s.cancel(arg)', r.id), { ok: true, value: true });
      assert.deepEqual(await settle(page, 'return s.remove(arg)', r.id), { ok: true, value: null });
      assert.equal(await h.task(page, r.id), null, 'a removed task is gone');
      assertRejects(await settle(page, 'return s.pause(arg)', r.id), 'not-found', 'pause of a removed task');

      // The session still works: a download completes with the source bytes.
      const file3 = h.uniquePath('api-after');
      const ok = await h.download(page, `${file3}?size=4M`);
      await h.waitCompleted(page, ok.id);
      await h.assertSameBytes(assert, page, server, file3, '4M', ok.id);
    });
  } finally {
    await browser.dispose();
  }
});
