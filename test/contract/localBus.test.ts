import { LocalBroker, LocalBus } from '../../src/bus/localBus.js';
import { busContract } from './bus.contract.js';

const brokers = new Map<string, LocalBroker>();

busContract('LocalBus', {
  make(instanceId, { retainEvents, shared }) {
    let broker = brokers.get(shared);
    if (!broker) brokers.set(shared, (broker = new LocalBroker(retainEvents)));
    return new LocalBus(broker, instanceId);
  },
});
