import { MemoryRaftStorage } from '../../src/consensus/memory-storage.ts'
import { describeRaftStorage } from './raft-storage-contract.ts'

describeRaftStorage('memory', () => new MemoryRaftStorage())
