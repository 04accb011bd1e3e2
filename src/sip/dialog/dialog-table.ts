/**
 * The dialogs a UA holds, found by dialog ID (RFC 3261 §12): Call-ID, local tag, remote tag.
 * For a request from the peer the local tag is its To tag and the remote tag its From tag; for a
 * response to our request it is the other way round.
 */
import type { SipRequest, SipResponse } from '../message/message.ts';
import { tagOf } from '../message/header-values.ts';
import type { Dialog, DialogId } from './dialog.ts';

function keyOf(id: DialogId): string {
  return `${id.callId}\n${id.localTag}\n${id.remoteTag}`;
}

/** Dialogs by ID. Owned by the call layer: it adds a dialog when created and removes it when terminated. */
export class DialogTable {
  private readonly byId = new Map<string, Dialog>();

  /** Adds a dialog; a dialog with the same ID is an internal error. */
  add(dialog: Dialog): void {
    const key = keyOf(dialog.id);
    const existing = this.byId.get(key);
    if (existing !== undefined && existing !== dialog) {
      throw new Error(`dialog ${JSON.stringify(dialog.id)} is already in the table`);
    }
    this.byId.set(key, dialog);
  }

  /** Removes a dialog (or the dialog with this ID); returns whether one was removed. */
  remove(dialogOrId: Dialog | DialogId): boolean {
    const id = 'id' in dialogOrId ? dialogOrId.id : dialogOrId;
    return this.byId.delete(keyOf(id));
  }

  get(id: DialogId): Dialog | undefined {
    return this.byId.get(keyOf(id));
  }

  /** The dialog a request from the peer belongs to: To tag = local tag, From tag = remote tag. */
  findForRequest(request: SipRequest): Dialog | undefined {
    const callId = request.headers.get('Call-ID');
    const to = request.headers.get('To');
    const from = request.headers.get('From');
    if (callId === undefined || to === undefined || from === undefined) return undefined;
    const localTag = tagOf(to);
    if (localTag === undefined) return undefined;
    return this.get({ callId, localTag, remoteTag: tagOf(from) ?? '' });
  }

  /** The dialog a response to our request belongs to: From tag = local tag, To tag = remote tag. */
  findForResponse(response: SipResponse): Dialog | undefined {
    const callId = response.headers.get('Call-ID');
    const to = response.headers.get('To');
    const from = response.headers.get('From');
    if (callId === undefined || to === undefined || from === undefined) return undefined;
    const localTag = tagOf(from);
    if (localTag === undefined) return undefined;
    return this.get({ callId, localTag, remoteTag: tagOf(to) ?? '' });
  }

  /**
   * Every dialog with this Call-ID and local tag: the early dialogs a forked INVITE created
   * (§12.1.2, §13.2.2.4), e.g. to terminate the others when one is confirmed.
   */
  findByLocal(callId: string, localTag: string): Dialog[] {
    const out: Dialog[] = [];
    for (const d of this.byId.values()) if (d.id.callId === callId && d.id.localTag === localTag) out.push(d);
    return out;
  }

  get size(): number {
    return this.byId.size;
  }

  values(): IterableIterator<Dialog> {
    return this.byId.values();
  }
}

/**
 * Where a request from the network belongs (§12.2.2):
 * - `out-of-dialog`: the To has no tag (a new request, §8.2);
 * - `dialog`: the To has a tag and the dialog exists;
 * - `no-dialog`: the To has a tag and no dialog matches: "the UAS SHOULD reject the request with
 *   a 481 (Call/Transaction Does Not Exist)". An ACK in that case is not answered (ACK never gets
 *   a response; the ACK of a non-2xx is absorbed by the server transaction before this point).
 */
export function classifyInDialog(request: SipRequest, table: DialogTable): 'dialog' | 'no-dialog' | 'out-of-dialog' {
  const to = request.headers.get('To');
  if (to === undefined || tagOf(to) === undefined) return 'out-of-dialog';
  return table.findForRequest(request) !== undefined ? 'dialog' : 'no-dialog';
}
