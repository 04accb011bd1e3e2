/**
 * The dialog event package's document (RFC 4235 §4): `application/dialog-info+xml`, listing
 * the dialogs of one monitored user (the `entity`). Pure: a value in, a UTF-8 string out.
 */
import { escapeXml } from './xml-escape.ts';

/** RFC 4235 §3.5 (NOTIFY bodies): the body type of `Event: dialog` NOTIFYs. */
export const DIALOG_INFO_CONTENT_TYPE = 'application/dialog-info+xml';

/** RFC 4235 §4.3 schema: the namespace of every element. */
export const DIALOG_INFO_NAMESPACE = 'urn:ietf:params:xml:ns:dialog-info';

/**
 * The states of the dialog FSM (RFC 4235 §3.7.1), carried in `<state>` (§4.1.2):
 * - `trying`: the initiator sent the INVITE, or the recipient received it; no response yet.
 * - `proceeding`: a provisional response without a To tag.
 * - `early`: a provisional response with a To tag (the callee is ringing).
 * - `confirmed`: a 2xx was sent or received.
 * - `terminated`: a failure response, CANCEL, BYE or timeout ended it.
 */
export type DialogInfoState = 'trying' | 'proceeding' | 'early' | 'confirmed' | 'terminated';

/** RFC 4235 §4.1.1: `initiator` when the monitored user sent the INVITE, `recipient` when it received it. */
export type DialogDirection = 'initiator' | 'recipient';

/** RFC 4235 §4.1.2: why a dialog reached `terminated` (the `event` attribute of `<state>`). */
export type DialogTerminationEvent = 'cancelled' | 'rejected' | 'replaced' | 'local-bye' | 'remote-bye' | 'error' | 'timeout';

/** One side of the dialog (RFC 4235 §4.1.6): its identity (a name-addr) and its target URI. */
export interface DialogParticipant {
  /** The URI of `<identity>` (§4.1.6.1), e.g. `sip:101@hookswitch.local`. */
  identity?: string;
  /** The `display` attribute of `<identity>`. */
  display?: string;
  /** The URI of `<target>` (§4.1.6.2): the participant's contact. */
  target?: string;
}

/** One `<dialog>` element (RFC 4235 §4.1.1). */
export interface DialogInfo {
  /** Unique among the dialogs of the entity; only `[^"]` matters once escaped. */
  id: string;
  /** Dialog identifiers, when known (the recipient of an INVITE in `trying` has no local tag yet). */
  callId?: string;
  localTag?: string;
  remoteTag?: string;
  direction?: DialogDirection;
  state: DialogInfoState;
  /** The `event` attribute of `<state>`; meaningful with `terminated` (and `early`/`confirmed` for `replaced`). */
  event?: DialogTerminationEvent;
  /** The `code` attribute of `<state>`: the response status that caused the transition (§4.1.2). */
  code?: number;
  /** `<duration>` (§4.1.3): seconds since the dialog was confirmed. */
  durationSeconds?: number;
  /** The monitored user's side. */
  local?: DialogParticipant;
  /** The far side. */
  remote?: DialogParticipant;
}

/** A whole document (RFC 4235 §4.1). */
export interface DialogInfoDocument {
  /** The monitored user's URI (`entity` attribute). */
  entity: string;
  /**
   * §4.1: "Versions start at 0, and increment by one for each new document sent to a
   * subscriber"; scoped per subscription and representable in 32 bits.
   */
  version: number;
  /** §4.1: `full` (every dialog of the entity) or `partial` (only changed ones). */
  state: 'full' | 'partial';
  dialogs: readonly DialogInfo[];
}

const ORDER: Record<DialogInfoState, number> = { trying: 0, proceeding: 1, early: 2, confirmed: 3, terminated: 4 };

/**
 * Whether the dialog FSM (RFC 4235 §3.7.1) can move from `from` to `to`. Every transition goes
 * forward (trying → proceeding → early → confirmed → terminated, skipping allowed); `early →
 * early` (another provisional response) and `confirmed → confirmed` (a re-INVITE) are allowed;
 * nothing leaves `terminated`.
 */
export function canAdvance(from: DialogInfoState, to: DialogInfoState): boolean {
  if (from === 'terminated') return false;
  return ORDER[to] >= ORDER[from];
}

function attr(name: string, value: string | number | undefined): string {
  return value === undefined ? '' : ` ${name}="${escapeXml(String(value))}"`;
}

function participant(tag: 'local' | 'remote', p: DialogParticipant | undefined, indent: string): string[] {
  if (p === undefined || (p.identity === undefined && p.target === undefined)) return [];
  const out = [`${indent}<${tag}>`];
  if (p.identity !== undefined) out.push(`${indent}  <identity${attr('display', p.display)}>${escapeXml(p.identity)}</identity>`);
  if (p.target !== undefined) out.push(`${indent}  <target${attr('uri', p.target)}/>`);
  out.push(`${indent}</${tag}>`);
  return out;
}

function checkDocument(doc: DialogInfoDocument): void {
  if (!Number.isInteger(doc.version) || doc.version < 0 || doc.version > 0xffffffff) {
    throw new RangeError(`dialog-info version ${doc.version} is not an unsigned 32-bit integer (RFC 4235 §4.1)`);
  }
  const ids = new Set<string>();
  for (const d of doc.dialogs) {
    if (d.id === '') throw new RangeError('dialog-info dialog id is empty (RFC 4235 §4.1.1: id is required)');
    if (ids.has(d.id)) throw new RangeError(`dialog-info dialog id ${JSON.stringify(d.id)} appears twice`);
    ids.add(d.id);
    if (d.code !== undefined && (!Number.isInteger(d.code) || d.code < 100 || d.code > 699)) {
      throw new RangeError(`dialog-info state code ${d.code} is not a SIP status (RFC 4235 §4.1.2)`);
    }
  }
}

/**
 * Encodes a dialog-info document (RFC 4235 §4), elements in the order of the §4.3 schema
 * (`state`, `duration`, `local`, `remote`), two-space indented, LF line ends, UTF-8. An empty
 * `dialogs` gives a self-closed root: a full document saying the entity has no dialogs.
 * Throws a RangeError for a version outside 32 bits, an empty or repeated dialog id, or a
 * `code` that is no SIP status: those are caller bugs, not network input.
 */
export function encodeDialogInfo(doc: DialogInfoDocument): string {
  checkDocument(doc);
  const root = `<dialog-info${attr('xmlns', DIALOG_INFO_NAMESPACE)}${attr('version', doc.version)}${attr('state', doc.state)}${attr('entity', doc.entity)}`;
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>'];
  if (doc.dialogs.length === 0) {
    lines.push(`${root}/>`);
    return `${lines.join('\n')}\n`;
  }
  lines.push(`${root}>`);
  for (const d of doc.dialogs) {
    lines.push(`  <dialog${attr('id', d.id)}${attr('call-id', d.callId)}${attr('local-tag', d.localTag)}${attr('remote-tag', d.remoteTag)}${attr('direction', d.direction)}>`);
    lines.push(`    <state${attr('event', d.event)}${attr('code', d.code)}>${d.state}</state>`);
    if (d.durationSeconds !== undefined) lines.push(`    <duration>${Math.max(0, Math.floor(d.durationSeconds))}</duration>`);
    lines.push(...participant('local', d.local, '    '), ...participant('remote', d.remote, '    '));
    lines.push('  </dialog>');
  }
  lines.push('</dialog-info>');
  return `${lines.join('\n')}\n`;
}
