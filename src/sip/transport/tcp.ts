import net from 'node:net';
import { StreamTransport, type StreamTransportOptions } from './stream-transport.ts';
import type { Endpoint } from './transport.ts';

export type TcpTransportOptions = StreamTransportOptions;

/** SIP over TCP (RFC 3261 §18): a listening server plus outgoing connections, framed by Content-Length. */
export class TcpTransport extends StreamTransport {
  readonly name = 'tcp' as const;
  protected readonly readyEvent = 'connect' as const;

  constructor(opts: TcpTransportOptions) {
    super(opts);
  }

  protected createServer(onSocket: (socket: net.Socket) => void): net.Server {
    return net.createServer({ noDelay: true }, onSocket);
  }

  protected openSocket(dest: Endpoint): net.Socket {
    return net.connect({ host: dest.address, port: dest.port, noDelay: true });
  }
}
