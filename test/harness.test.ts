/**
 * Proves the service harness: the Kafka and etcd that test/setup/services.ts started answer, keep what
 * is written and give it back exactly.
 */
import { Etcd3 } from 'etcd3';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { etcdEndpoints, kafkaBrokers, uniquePrefix } from './helpers/services.ts';

describe('service harness', () => {
  it('Kafka keeps three produced messages and gives them back with offsets 0, 1, 2', async () => {
    const kafka = new Kafka({ clientId: 'harness-test', brokers: kafkaBrokers(), logLevel: logLevel.ERROR });
    const topic = `${uniquePrefix('harness')}.messages`;
    const admin = kafka.admin();
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    // A short long-poll: disconnect waits for the fetch in flight.
    const consumer = kafka.consumer({ groupId: `${topic}.reader`, maxWaitTimeInMs: 100 });
    try {
      await admin.connect();
      expect(await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })).toBe(
        true,
      );

      await producer.connect();
      await producer.send({
        topic,
        acks: -1,
        messages: [
          { key: 'a', value: 'first' },
          { key: 'b', value: 'second' },
          { key: 'c', value: 'third' },
        ],
      });

      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const received: { key: string; value: string; offset: string }[] = [];
      await new Promise<void>((resolve, reject) => {
        consumer
          .run({
            eachMessage: async ({ message }) => {
              received.push({
                key: message.key?.toString() ?? '',
                value: message.value?.toString() ?? '',
                offset: message.offset,
              });
              if (received.length === 3) resolve();
            },
          })
          .catch(reject);
      });

      expect(received).toEqual([
        { key: 'a', value: 'first', offset: '0' },
        { key: 'b', value: 'second', offset: '1' },
        { key: 'c', value: 'third', offset: '2' },
      ]);
      expect(await admin.fetchTopicOffsets(topic)).toEqual([
        { partition: 0, offset: '3', high: '3', low: '0' },
      ]);
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
      await admin.disconnect();
    }
  });

  it('etcd returns exactly the value that was put', async () => {
    const client = new Etcd3({ hosts: etcdEndpoints() });
    const key = `/${uniquePrefix('harness')}/greeting`;
    try {
      await client.put(key).value('hello, argus ✓');
      expect(await client.get(key).string()).toBe('hello, argus ✓');
      expect(await client.getAll().prefix(key).keys()).toEqual([key]);
    } finally {
      client.close();
    }
  });
});
