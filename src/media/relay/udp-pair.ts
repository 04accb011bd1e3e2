/**
 * The sockets of one relay leg (an I/O adapter for `rtp-relay.ts`): RTP on an even port and RTCP
 * on the next odd one (RFC 3550 §11), bound exclusively on the relay's bind address.
 */
import dgram from 'node:dgram';
import { isIP } from 'node:net';

/** The RTP and RTCP sockets of one leg. */
export interface UdpPair {
  rtp: dgram.Socket;
  rtcp: dgram.Socket;
}

/**
 * Binds `port` (RTP) and `port + 1` (RTCP) on `bind`; rejects (closing what it bound) when either
 * is taken, so that a port allocator can try the next pair. After binding, socket errors go to
 * `onError`. Destinations must be IP literals: the sockets resolve no names.
 */
export async function bindUdpPair(bind: string, port: number, onError: (err: Error) => void): Promise<UdpPair> {
  const rtp = await bindSocket(bind, port, onError);
  try {
    return { rtp, rtcp: await bindSocket(bind, port + 1, onError) };
  } catch (err) {
    closeQuietly(rtp);
    throw err;
  }
}

function bindSocket(bind: string, port: number, onError: (err: Error) => void): Promise<dgram.Socket> {
  const v6 = isIP(bind) === 6;
  const family = v6 ? 6 : 4;
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket({
      type: v6 ? 'udp6' : 'udp4',
      reuseAddr: false,
      // Destinations are always IP literals (rinfo or checked in setRemote): skip dns.lookup per packet.
      lookup: (address, _options, callback) => callback(null, address, family),
    });
    const onBindError = (err: Error): void => {
      closeQuietly(socket);
      reject(err);
    };
    socket.once('error', onBindError);
    socket.bind({ address: bind, port, exclusive: true }, () => {
      socket.off('error', onBindError);
      socket.on('error', onError);
      resolve(socket);
    });
  });
}

/** Closes `socket`, ignoring that it is not running (bind failed, or closed already). */
export function closeQuietly(socket: dgram.Socket): void {
  try {
    socket.close();
  } catch {
    // Not running: nothing to release.
  }
}
