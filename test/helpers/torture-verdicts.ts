/**
 * What the gateway answers to each RFC 4475 / RFC 5118 torture message sent to it over UDP,
 * following `shared/sip-torture/INDEX.md`. `null` means no answer: responses are never
 * answered, and a malformed response is dropped.
 *
 * The gateway is a registrar and B2BUA endpoint with digest auth on by default, so a valid
 * REGISTER gets 401 and a valid INVITE 407 (a challenge is the right reply to a well-formed
 * request from an unauthenticated sender); OPTIONS to it gets 200; methods it understands but
 * does not serve outside a dialog get 405, unknown methods 501.
 */
export const SERVER_VERDICTS: Record<string, Record<string, number | null | readonly number[]>> = {
  rfc4475: {
    // §3.1.1 valid messages.
    // Its To carries a tag: a re-INVITE for a dialog the gateway does not hold (§12.2.2).
    wsinv: 481,
    intmeth: 501,
    esc01: 407,
    escnull: 401,
    esc02: 501,
    lwsdisp: 200,
    longreq: 407,
    dblreq: 401,
    semiuri: 200,
    transports: 200,
    // A MESSAGE (RFC 3428) from an unauthenticated sender: challenged like an INVITE.
    mpart01: 407,
    unreason: null,
    noreason: null,
    // §3.1.2 invalid messages.
    badinv01: 400,
    clerr: 400,
    ncl: 400,
    scalar02: 400,
    scalarlg: null,
    quotbal: 400,
    ltgtruri: 400,
    lwsruri: 400,
    lwsstart: 400,
    trws: 400,
    escruri: 400,
    // §3.1.2.12: Date does not matter to us; "may ignore Date": processed normally.
    baddate: 407,
    // §3.1.2.13: 400 is reasonable, inferring the <> is allowed; we infer (then challenge).
    regbadct: 401,
    badaspec: 400,
    baddn: 400,
    'baddn-terminated': 400,
    badvers: 505,
    mismatch01: 400,
    mismatch02: 501,
    bigcode: null,
    // §3.2 and §3.3: syntactically valid, semantically odd.
    // §3.2.1: the bare magic cookie is a (poor) branch; either answer is allowed.
    badbranch: [200, 400],
    insuf: 400,
    unkscm: 416,
    novelsc: 416,
    unksm2: 400,
    bext01: 420,
    invut: 415,
    regaut01: 401,
    multi01: 400,
    mcl01: 400,
    bcast: null,
    zeromf: 200,
    cparam01: 401,
    cparam02: 401,
    regescrt: 401,
    sdp01: 406,
    inv2543: 407,
    // Archive file `test`: no Via at all, so there is nowhere to send a response.
    test: null,
  },
  rfc5118: {
    'ipv6-good': 401,
    'ipv6-bad': 400,
    'port-ambiguous': 401,
    'port-unambiguous': 401,
    // In-dialog BYEs (To tag) for dialogs the gateway does not hold: 481 (§12.2.2).
    'via-received-param-with-delim': 481,
    'via-received-param-no-delim': 200,
    // Deliberately strict (see the parser test): Content-Length exceeds the datagram.
    'ipv6-in-sdp': 400,
    'mult-ip-in-header': 481,
    'mult-ip-in-sdp': 407,
    'ipv4-mapped-ipv6': 407,
    'ipv6-bug-abnf-3-colons': 200,
    'ipv6-correct-abnf-2-colons': 200,
  },
};
