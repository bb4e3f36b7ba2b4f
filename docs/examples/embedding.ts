// docs/examples/embedding.ts — run it with: node --import tsx docs/examples/embedding.ts
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRuntime, defineEntity } from '../../runtime/index.ts';

// 1. An entity kind: state, a union of messages, and how a message changes the state.
type Check = { type: 'check'; ok: boolean };
interface Uptime {
  checks: number;
  failures: number;
}

const uptime = defineEntity<Uptime, Check>({
  kind: 'uptime',
  initialState: () => ({ checks: 0, failures: 0 }),
  receive: (s, m) => ({ checks: s.checks + 1, failures: s.failures + (m.ok ? 0 : 1) }),
});

// 2. A runtime: embedded mode keeps mailboxes and snapshots in an LMDB journal in dataDir.
const dataDir = mkdtempSync(join(tmpdir(), 'argus-example-'));
const runtime = createRuntime({ mode: 'embedded', dataDir, http: false });
const hosts = runtime.register(uptime);

// 3. Lifecycle events: every start, crash, restart, escalation, passivation and stop.
const unsubscribe = runtime.subscribe((e) => {
  if (e.type === '@argus.lifecycle' && e.path.endsWith('/web-12')) console.log(`${e.phase} ${e.path}`);
});

await runtime.start();

// 4. Messages are durable once send() resolves; the entity is activated on its first one.
await hosts.send('web-12', { type: 'check', ok: true });
await hosts.send('web-12', { type: 'check', ok: false });
await hosts.send('web-12', { type: 'check', ok: true });

let seen = await hosts.state('web-12');
while (seen.state.checks < 3) {
  await new Promise((r) => setTimeout(r, 10));
  seen = await hosts.state('web-12');
}
console.log(`web-12: ${seen.state.checks} checks, ${seen.state.failures} failed`);

// 5. Bad input is refused at the edge with a coded error naming the problem.
try {
  await runtime.send('uptime', '', { type: 'check' });
} catch (e) {
  console.log((e as Error).message);
}

// 6. Stop: in-flight batches finish and are committed, actors stop, the journal closes.
await runtime.stop();
unsubscribe();
console.log(`status: ${runtime.status}`);
rmSync(dataDir, { recursive: true, force: true });
