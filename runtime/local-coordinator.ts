/**
 * The coordinator of a node alone (embedded mode, or Kafka without `cluster`): it owns every shard of
 * every kind at epoch 0. A shard whose writer is fenced (a second node was started on the same Kafka
 * prefix without a cluster configuration) is released and not taken back: two lone nodes would only
 * fence each other in turn. The warning says what to do instead.
 */
import type {
  ClusterView,
  Coordinator,
  CoordinatorStatus,
  MemberInfo,
  PartitionRef,
  ShardHost,
  ShardOwner,
} from './boundaries.ts';
import { describeError } from './errors.ts';

const RETRY_MS = 500;

export class LocalCoordinator implements Coordinator {
  readonly name = 'local';
  private self: MemberInfo | undefined;
  private host: ShardHost | undefined;
  private status: CoordinatorStatus = 'starting';
  private readonly running = new Map<string, PartitionRef>();
  private readonly given = new Set<string>();
  private readonly retries = new Map<string, NodeJS.Timeout>();
  private readonly acquiring = new Map<string, Promise<void>>();

  constructor(
    private readonly now: () => number,
    private readonly warn: (message: string) => void,
  ) {}

  async start(host: ShardHost, self: Omit<MemberInfo, 'joinedAt'>): Promise<void> {
    this.host = host;
    this.self = { ...self, joinedAt: this.now() };
    this.status = 'active';
    const refs = Object.entries(self.kinds).flatMap(([kind, shards]) =>
      Array.from({ length: shards }, (_, partition) => ({ kind, partition })),
    );
    await Promise.all(refs.map((ref) => this.acquire(ref)));
  }

  private acquire(ref: PartitionRef): Promise<void> {
    const id = `${ref.kind}/${ref.partition}`;
    const work = (async () => {
      try {
        await this.host!.acquire(ref, 0);
        if (this.status === 'active') this.running.set(id, ref);
        else await this.host!.release(ref, 'stopping');
      } catch (e) {
        if (this.status !== 'active') return;
        this.warn(
          `shard ${id} could not start (${describeError(e).message}); trying again in ${RETRY_MS} ms`,
        );
        this.retries.set(
          id,
          setTimeout(() => {
            this.retries.delete(id);
            if (this.status === 'active') void this.acquire(ref);
          }, RETRY_MS),
        );
      } finally {
        this.acquiring.delete(id);
      }
    })();
    this.acquiring.set(id, work);
    return work;
  }

  view(): ClusterView {
    const placement: Record<string, ShardOwner[]> = {};
    for (const [kind, shards] of Object.entries(this.self?.kinds ?? {})) {
      placement[kind] = Array.from({ length: shards }, (_, p) => ({
        node: this.given.has(`${kind}/${p}`) ? undefined : this.self?.id,
        epoch: 0,
      }));
    }
    return {
      coordinator: 'local',
      nodeId: this.self?.id ?? '',
      status: this.status,
      leader: this.self?.id,
      epoch: 0,
      members: this.self ? [this.self] : [],
      placement,
      running: [...this.running.values()].map((r) => ({ ...r, epoch: 0 })),
    };
  }

  ownerOf(kind: string, partition: number): MemberInfo | undefined {
    if (!this.self || this.given.has(`${kind}/${partition}`)) return undefined;
    return kind in this.self.kinds ? this.self : undefined;
  }

  holds(ref: PartitionRef): boolean {
    return this.status === 'active' && this.running.has(`${ref.kind}/${ref.partition}`);
  }

  fenced(ref: PartitionRef): void {
    const id = `${ref.kind}/${ref.partition}`;
    if (!this.running.has(id)) return;
    this.running.delete(id);
    this.given.add(id);
    this.warn(
      `shard ${id} was taken over by another node writing the same mailbox; without a 'cluster' configuration nodes do not share shards, so this node leaves it`,
    );
    void this.host!.release(ref, 'fenced').catch((e) =>
      this.warn(`releasing fenced shard ${id} failed: ${describeError(e).message}`),
    );
  }

  async stop(): Promise<void> {
    if (this.status === 'stopped') return;
    this.status = 'stopped';
    for (const t of this.retries.values()) clearTimeout(t);
    this.retries.clear();
    await Promise.allSettled([...this.acquiring.values()]);
    const refs = [...this.running.values()];
    this.running.clear();
    await Promise.allSettled(refs.map((ref) => this.host!.release(ref, 'stopping')));
  }
}
