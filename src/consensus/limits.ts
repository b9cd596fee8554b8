/**
 * Size limits shared by the core (what it will produce) and the wire schemas (what a peer will
 * accept). Keeping them in one place keeps a leader from producing what its followers refuse.
 */

/** Longest peer id. */
export const MAX_PEER_ID_LENGTH = 256
/** Largest entry payload a proposal may carry. */
export const MAX_ENTRY_BYTES = 256 * 1024
/** Most entries in one append message. */
export const MAX_ENTRIES_PER_MESSAGE = 4096
/** Upper bound of the maxBytesPerMsg option (entry bytes packed into one append). */
export const MAX_APPEND_BYTES = 4 * 1024 * 1024
/** Default of maxBytesPerMsg: with the default 64 entries, an append stays well under 1 MiB. */
export const DEFAULT_APPEND_BYTES = 512 * 1024
/**
 * Largest snapshot payload. A snapshot travels in one message, so the transport must accept
 * MAX_RAFT_MESSAGE_BYTES on the Raft protocol (its default limit is 1 MiB).
 */
export const MAX_SNAPSHOT_BYTES = 16 * 1024 * 1024
/** Most members in a configuration. */
export const MAX_CONF_MEMBERS = 1024
/** Size limit of one encoded message: the largest snapshot or append, plus an envelope. */
export const MAX_RAFT_MESSAGE_BYTES = MAX_SNAPSHOT_BYTES + 1024 * 1024
