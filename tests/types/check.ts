// Compiled by `make test` (tsc --noEmit): the published declarations must describe
// the API the README documents. Nothing here runs.
import init, { BackgroundSession } from '../../pkg/longhaul.js';
import type { TaskSnapshot, TaskState, ErrorCode, DownloadOptions, SessionConfig, UploadOptions, UploadSnapshot, DownloadSnapshot } from '../../pkg/longhaul.js';
import { install } from '../../pkg/longhaul-sw.js';

async function usage(): Promise<void> {
  await init();
  const config: SessionConfig = { retry: { maxAttempts: 3, delays: [1000, 5000], maxAge: 86_400_000 }, requestTimeout: 30_000, byteBudget: 1 << 30,
    maxConnectionsPerHost: 2, resourceTimeout: 86_400_000, headers: { 'X-App': '1' }, discretionary: true,
    allowsExpensiveNetworkAccess: false, allowsConstrainedNetworkAccess: false };
  const session: BackgroundSession = await BackgroundSession.open('downloads', config);
  await BackgroundSession.open('downloads');
  const kept = await BackgroundSession.open('downloads', undefined, { mustExist: true });
  const isNew: boolean = kept.isNew;
  console.log(isNew);
  await BackgroundSession.open('downloads', { notifications: true });
  const id: string = session.identifier;
  const opts: DownloadOptions = { headers: { 'X-Token': 'abc' }, description: 'a file', maxBytes: 1 << 30 };
  const tooLarge: ErrorCode = 'too-large';
  const codes: ErrorCode[] = ['integrity', 'over-budget'];
  await session.download('/f', { integrity: 'sha256-abc', sensitiveHeaders: ['X-Key'], persistCredentials: false });
  await install({ credentials: async ({ url, attempt }) => ({ Authorization: `Bearer ${url}-${attempt}` }) });
  await install();
  const snap: DownloadSnapshot = await session.download('/files/a.bin?size=1M', opts);
  await session.download(new URL('https://example.test/b'), { headers: [['X-A', '1']] });
  const state: TaskState = snap.state;
  const expected: number | null = snap.bytesExpected;
  const received: number = snap.bytesReceived;
  const uopts: UploadOptions = { protocol: 'tus', chunkSize: 1 << 22, metadata: { filename: 'a.bin' }, headers: { 'X-A': '1' } };
  const up: UploadSnapshot = await session.upload('https://tus.example.test/files', new Blob(['x']), uopts);
  const sent: number = up.bytesSent;
  await session.upload(new URL('https://example.test/put'), new Uint8Array(4).buffer, { protocol: 'put', contentType: 'text/plain' });
  const doneOf = (t: TaskSnapshot): number => (t.kind === 'upload' ? t.bytesSent : t.bytesReceived);
  const done: number = doneOf(up);
  const dsnap: TaskSnapshot = snap;
  const code: ErrorCode | undefined = snap.error?.code;
  const all: TaskSnapshot[] = await session.tasks();
  const one: TaskSnapshot | null = await session.task(snap.id);
  const paused: TaskSnapshot = await session.pause(snap.id);
  const resumed: TaskSnapshot = await session.resume(snap.id);
  const canceled = await session.cancel(snap.id);
  const data = await session.cancel(snap.id, { produceResumeData: true });
  if (typeof data === 'object') {
    const revived: DownloadSnapshot = await session.download(data);
    console.log(revived.bytesReceived, JSON.stringify(data));
  }
  await session.remove(snap.id);
  const blob: Blob = await session.blob(snap.id);
  session.addEventListener('progress', (e) => {
    const s: TaskSnapshot = e.detail;
    console.log(s.kind === 'download' ? s.bytesReceived : s.bytesSent);
  });
  session.addEventListener('complete', (e) => console.log(e.detail.state === 'completed'));
  session.addEventListener('finish', (e) => console.log(e.detail.session));
  const ids: string[] = await BackgroundSession.identifiers();
  await session.finishTasksAndInvalidate();
  await session.invalidateAndCancel();
  console.log(ids);
  session.close();
  console.log(sent, done, dsnap, tooLarge, codes, id, state, expected, received, code, all, one, paused, resumed, canceled, blob);
}

// @ts-expect-error: the identifier must be a string
BackgroundSession.open(42);
// @ts-expect-error: unknown event names are refused
async function badEvent(s: BackgroundSession) { s.addEventListener('finished', () => {}); }
// @ts-expect-error: unknown configuration keys are refused
BackgroundSession.open('x', { retyr: {} });
// @ts-expect-error: only tus, put and post are protocols
async function badProtocol(s: BackgroundSession) { await s.upload('/u', new Blob([]), { protocol: 'ftp' }); }
// @ts-expect-error: the credentials hook is a function
install({ credentials: 'token' });

export { usage, badEvent, badProtocol };
