/** Opens the Kafka boundary implementations from the node's configuration (runtime/open-boundaries.ts). */

import type { ArgusConfig } from '../config.ts';
import { ArgusError } from '../errors.ts';
import type { Boundaries } from '../runtime.ts';
import { KafkaCheckpointStore } from './checkpoints.ts';
import { KafkaDeadLetterStore } from './deadletters.ts';
import { KafkaMailbox } from './mailbox.ts';
import { KafkaSnapshotStore } from './snapshots.ts';

export const openKafkaBoundaries = async (config: ArgusConfig): Promise<Boundaries> => {
  const kafka = config.kafka;
  if (!kafka) {
    throw new ArgusError('ARGUS_ERR_INVALID_CONFIG', "kafka: is required when mode is 'kafka'", {
      field: 'kafka',
    });
  }
  const connection = {
    brokers: kafka.brokers,
    clientId: `${kafka.clientId}-${config.nodeId}`,
    topicPrefix: kafka.topicPrefix,
  };
  const mailbox = new KafkaMailbox({ ...connection, consumer: { maxBatch: config.delivery.maxBatch } });
  const snapshots = new KafkaSnapshotStore(connection);
  const deadLetters = new KafkaDeadLetterStore(connection);
  const checkpoints = new KafkaCheckpointStore({ ...connection, snapshots });
  try {
    await deadLetters.ensure();
  } catch (e) {
    await Promise.allSettled([mailbox.close(), checkpoints.close(), snapshots.close(), deadLetters.close()]);
    throw e;
  }
  return {
    mailbox,
    snapshots,
    deadLetters,
    checkpoints,
    close: async () => {
      await mailbox.close();
      await checkpoints.close();
      await Promise.all([snapshots.close(), deadLetters.close()]);
    },
  };
};
