// hookswitch-serial: reference firmware for the hookswitch serial protocol, version 1
// (docs/serial-protocol.md). Reads a hook switch, a rotary dial (or a 4x3/4x4 keypad) and push
// buttons; drives a ringer with the host's cadence, relays and LEDs. Timing uses millis(), never
// delay(), so the serial line is read all the time.
//
// Wiring (defaults for an Arduino Uno/Nano, as board/serial-handset.json lists them; change the
// pin table below):
//   D2  hook switch to GND (closed = off-hook)        D3  rotary pulse contact to GND (normally closed)
//   D4  rotary off-normal contact to GND (closed while the dial is turned off rest; -1 if not wired)
//   D5  ringer: SLIC RM, or a bell driver enable      D6  SLIC FR (toggled at RING_HZ while ringing; -1 for a bell)
//   D7  call button to GND                            D8  relay 1 (door opener driver)
//   D9, D10  LED 1, LED 2
// All inputs use the internal pull-ups.

#include <Arduino.h>
#include <string.h>
#include <stdlib.h>

// ---- configuration ---------------------------------------------------------------------------
static const char FIRMWARE[] = "hookswitch-serial/0.1.0";
static const long BAUD = 115200;               // §1
static const int PROTOCOL_VERSION = 1;         // §4

static const int PIN_HOOK = 2;
static const bool HOOK_OFF_LEVEL = LOW;        // level of PIN_HOOK when the handset is lifted
static const int PIN_PULSE = 3;                // -1 without a rotary dial
static const int PIN_OFF_NORMAL = 4;           // -1 if the dial's off-normal contact is not wired
static const int BUTTON_PINS[] = {7};          // BUTTON 1, 2, ... (pressed = LOW)
static const int PIN_RINGER = 5;
static const int PIN_RING_FR = 6;              // SLIC forward/reverse; -1 for a bell driver
static const unsigned RING_HZ = 25;            // FR toggling frequency (20 or 25 Hz, per SLIC data sheet)
static const int RELAY_PINS[] = {8};           // RELAY 1, 2, ...
static const int LED_PINS[] = {9, 10};         // LED 1, 2, ...

// Keypad instead of (or besides) the rotary dial: set USE_KEYPAD to 1 and list the pins.
#define USE_KEYPAD 0
#if USE_KEYPAD
static const int KEYPAD_ROWS[] = {A0, A1, A2, A3};
static const int KEYPAD_COLS[] = {11, 12, 13};
static const char KEYPAD_MAP[4][3] = {{'1', '2', '3'}, {'4', '5', '6'}, {'7', '8', '9'}, {'*', '0', '#'}};
#endif

static const unsigned long HOOK_DEBOUNCE_MS = 30;   // §6: stable 20-30 ms
static const unsigned long BUTTON_DEBOUNCE_MS = 30;
static const unsigned long PULSE_DEBOUNCE_MS = 5;   // contact bounce is shorter; a break lasts ~60 ms
static const unsigned long DIGIT_GAP_MS = 300;      // §6: contact closed > 300 ms ends a digit
static const unsigned long HOST_SILENCE_MS = 10000; // §7 fail-safe
static const size_t MAX_LINE = 80;                  // §2
static const int MAX_CADENCE = 8;                   // §5
static const unsigned long MAX_MS = 60000;          // §3

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

// ---- debounced input -------------------------------------------------------------------------
struct Debounced {
  int pin;
  unsigned long stableMs;
  bool raw;
  bool state;
  unsigned long changedAt;

  void begin(int p, unsigned long ms) {
    pin = p;
    stableMs = ms;
    pinMode(pin, INPUT_PULLUP);
    raw = state = digitalRead(pin);
    changedAt = millis();
  }
  // True when the debounced level changed.
  bool update(unsigned long now) {
    bool r = digitalRead(pin);
    if (r != raw) {
      raw = r;
      changedAt = now;
    }
    if (raw != state && now - changedAt >= stableMs) {
      state = raw;
      return true;
    }
    return false;
  }
};

static Debounced hook;
static Debounced pulse;
static Debounced offNormal;
static Debounced buttons[COUNT(BUTTON_PINS)];

// ---- outputs ---------------------------------------------------------------------------------
static unsigned long cadence[MAX_CADENCE];
static int cadenceLen = 0;                // 0 = not ringing
static int cadenceStep = 0;
static unsigned long stepStarted = 0;
static unsigned long frToggled = 0;
static bool frLevel = false;

struct Relay {
  bool on;
  unsigned long pulseEnd;                 // 0 = no pulse running
};
static Relay relays[COUNT(RELAY_PINS)];

struct Led {
  unsigned long onMs, offMs;              // both 0 = steady
  bool steady;
  bool lit;
  unsigned long phaseStarted;
};
static Led leds[COUNT(LED_PINS)];

static unsigned long lastHostLine = 0;
static bool hostSeen = false;

static void setRinger(bool on, unsigned long now) {
  digitalWrite(PIN_RINGER, on ? HIGH : LOW);
  if (PIN_RING_FR >= 0 && !on) digitalWrite(PIN_RING_FR, LOW);
  frToggled = now;
}

static void ringOff() {
  cadenceLen = 0;
  setRinger(false, millis());
}

static void updateRinger(unsigned long now) {
  if (cadenceLen == 0) return;
  if (now - stepStarted >= cadence[cadenceStep]) {
    stepStarted += cadence[cadenceStep];
    if (now - stepStarted > MAX_MS) stepStarted = now;   // we fell far behind: resynchronise
    cadenceStep = (cadenceStep + 1) % cadenceLen;
    setRinger(cadenceStep % 2 == 0, now);
  }
  if (PIN_RING_FR >= 0 && cadenceStep % 2 == 0 && now - frToggled >= 500 / RING_HZ) {
    frToggled = now;
    frLevel = !frLevel;
    digitalWrite(PIN_RING_FR, frLevel ? HIGH : LOW);
  }
}

static void setRelay(size_t i, bool on) {
  relays[i].on = on;
  relays[i].pulseEnd = 0;
  digitalWrite(RELAY_PINS[i], on ? HIGH : LOW);
}

static void updateRelays(unsigned long now) {
  for (size_t i = 0; i < COUNT(RELAY_PINS); i++) {
    if (relays[i].pulseEnd != 0 && (long)(now - relays[i].pulseEnd) >= 0) setRelay(i, false);
  }
}

static void setLed(size_t i, bool steady, bool lit, unsigned long onMs, unsigned long offMs) {
  leds[i].steady = steady;
  leds[i].lit = lit;
  leds[i].onMs = onMs;
  leds[i].offMs = offMs;
  leds[i].phaseStarted = millis();
  digitalWrite(LED_PINS[i], lit ? HIGH : LOW);
}

static void updateLeds(unsigned long now) {
  for (size_t i = 0; i < COUNT(LED_PINS); i++) {
    Led &l = leds[i];
    if (l.steady) continue;
    if (now - l.phaseStarted >= (l.lit ? l.onMs : l.offMs)) {
      l.phaseStarted = now;
      l.lit = !l.lit;
      digitalWrite(LED_PINS[i], l.lit ? HIGH : LOW);
    }
  }
}

// §7: without a line from the host for 10 s, stop ringing, open relays, dark LEDs.
static void failSafe(unsigned long now) {
  if (!hostSeen || now - lastHostLine < HOST_SILENCE_MS) return;
  hostSeen = false;
  ringOff();
  for (size_t i = 0; i < COUNT(RELAY_PINS); i++) setRelay(i, false);
  for (size_t i = 0; i < COUNT(LED_PINS); i++) setLed(i, true, false, 0, 0);
  Serial.println(F("LOG host silent: outputs off"));
}

// ---- events ----------------------------------------------------------------------------------
static bool offHook() { return hook.state == HOOK_OFF_LEVEL; }

static void reportInputs() {
  Serial.println(offHook() ? F("HOOK OFF") : F("HOOK ON"));
  for (size_t i = 0; i < COUNT(BUTTON_PINS); i++) {
    if (buttons[i].state == LOW) {
      Serial.print(F("BUTTON "));
      Serial.print((int)(i + 1));
      Serial.println(F(" DOWN"));
    }
  }
}

static void sendHello() {
  Serial.print(F("HELLO "));
  Serial.print(PROTOCOL_VERSION);
  Serial.print(' ');
  Serial.println(FIRMWARE);
  reportInputs();
}

// Rotary dial: the pulse contact opens once per pulse (about 60 ms break, 40 ms make at 10 pps);
// a digit ends when the contact stays closed for DIGIT_GAP_MS, or when the off-normal contact
// returns to rest. 10 pulses are 0.
static int pulses = 0;
static unsigned long lastMake = 0;

static void endDigit() {
  if (pulses > 0 && pulses <= 10 && offHook()) {
    Serial.print(F("DIGIT "));
    Serial.println(pulses % 10);
  }
  pulses = 0;
}

static void updateDial(unsigned long now) {
  if (PIN_PULSE < 0) return;
  if (pulse.update(now)) {
    if (pulse.state == HIGH) pulses++;    // contact opened: a break
    else lastMake = now;
  }
  bool resting = PIN_OFF_NORMAL < 0 || (offNormal.update(now), offNormal.state == HIGH);
  if (pulses > 0 && pulse.state == LOW && now - lastMake > DIGIT_GAP_MS && resting) endDigit();
}

#if USE_KEYPAD
static char lastKey = 0;
static unsigned long keyChanged = 0;

static char scanKeypad() {
  for (size_t r = 0; r < COUNT(KEYPAD_ROWS); r++) {
    pinMode(KEYPAD_ROWS[r], OUTPUT);
    digitalWrite(KEYPAD_ROWS[r], LOW);
    char found = 0;
    for (size_t c = 0; c < COUNT(KEYPAD_COLS); c++) {
      if (digitalRead(KEYPAD_COLS[c]) == LOW) found = KEYPAD_MAP[r][c];
    }
    pinMode(KEYPAD_ROWS[r], INPUT_PULLUP);
    if (found) return found;
  }
  return 0;
}

static void updateKeypad(unsigned long now) {
  char k = scanKeypad();
  if (k == lastKey) return;
  if (now - keyChanged < BUTTON_DEBOUNCE_MS) return;
  keyChanged = now;
  lastKey = k;
  if (k) {
    Serial.print(F("KEY "));
    Serial.println(k);
  }
}
#endif

static void updateInputs(unsigned long now) {
  if (hook.update(now)) {
    pulses = 0;
    Serial.println(offHook() ? F("HOOK OFF") : F("HOOK ON"));
  }
  updateDial(now);
  for (size_t i = 0; i < COUNT(BUTTON_PINS); i++) {
    if (buttons[i].update(now)) {
      Serial.print(F("BUTTON "));
      Serial.print((int)(i + 1));
      Serial.println(buttons[i].state == LOW ? F(" DOWN") : F(" UP"));
    }
  }
#if USE_KEYPAD
  updateKeypad(now);
#endif
}

// ---- commands --------------------------------------------------------------------------------
// §3: decimal, no sign, no leading zeros, in [min, max].
static bool parseNumber(const char *s, unsigned long min, unsigned long max, unsigned long *out) {
  if (s == NULL || *s == 0 || strlen(s) > 6 || (s[0] == '0' && s[1] != 0)) return false;
  unsigned long v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9') return false;
    v = v * 10 + (unsigned long)(*p - '0');
  }
  if (v < min || v > max) return false;
  *out = v;
  return true;
}

// Splits "a,b,c" into out[]; returns the count, or -1 when malformed.
static int parseList(char *s, unsigned long *out, int max) {
  int n = 0;
  for (char *part = strtok(s, ","); part != NULL; part = strtok(NULL, ",")) {
    if (n == max || !parseNumber(part, 1, MAX_MS, &out[n])) return -1;
    n++;
  }
  return n;
}

static void ok() { Serial.println(F("OK")); }

static void err(const __FlashStringHelper *code, const __FlashStringHelper *text) {
  Serial.print(F("ERR "));
  Serial.print(code);
  Serial.print(' ');
  Serial.println(text);
}

static bool isExtension(const char *t) { return t != NULL && strchr(t, '=') != NULL; }

static void handleLine(char *line) {
  char *argv[6];
  int argc = 0;
  for (char *t = strtok(line, " \t"); t != NULL && argc < 6; t = strtok(NULL, " \t")) {
    if (isExtension(t)) break;            // §3: trailing NAME=VALUE tokens are ignored
    argv[argc++] = t;
  }
  if (argc == 0) return;
  const char *cmd = argv[0];
  unsigned long n, ms;

  if (strcasecmp(cmd, "HELLO") == 0) {
    if (argc < 2 || !parseNumber(argv[1], 1, 999, &n)) return err(F("BADARG"), F("HELLO <version>"));
    if (n < (unsigned long)PROTOCOL_VERSION) return err(F("BADVER"), F("need version 1"));
    return sendHello();
  }
  if (strcasecmp(cmd, "PING") == 0) {
    Serial.print(F("PONG"));
    if (argc > 1) {
      Serial.print(' ');
      Serial.print(argv[1]);
    }
    Serial.println();
    return;
  }
  if (strcasecmp(cmd, "RING") == 0) {
    if (argc != 2) return err(F("BADARG"), F("RING OFF or RING on,off,..."));
    if (strcasecmp(argv[1], "OFF") == 0) {
      ringOff();
      return ok();
    }
    unsigned long c[MAX_CADENCE];
    int len = parseList(argv[1], c, MAX_CADENCE);
    if (len < 2 || len % 2 != 0) return err(F("BADARG"), F("cadence needs 2-8 entries, an even number"));
    memcpy(cadence, c, sizeof(c[0]) * len);
    cadenceLen = len;
    cadenceStep = 0;
    stepStarted = millis();
    setRinger(true, stepStarted);
    return ok();
  }
  if (strcasecmp(cmd, "RELAY") == 0) {
    if (argc < 3 || !parseNumber(argv[1], 1, 16, &n)) return err(F("BADARG"), F("RELAY <n> ON|OFF|PULSE <ms>"));
    if (n > COUNT(RELAY_PINS)) return err(F("NOTSUP"), F("no such relay"));
    size_t i = n - 1;
    if (argc == 3 && strcasecmp(argv[2], "ON") == 0) setRelay(i, true);
    else if (argc == 3 && strcasecmp(argv[2], "OFF") == 0) setRelay(i, false);
    else if (argc == 4 && strcasecmp(argv[2], "PULSE") == 0 && parseNumber(argv[3], 1, MAX_MS, &ms)) {
      setRelay(i, true);
      relays[i].pulseEnd = millis() + ms;
      if (relays[i].pulseEnd == 0) relays[i].pulseEnd = 1;
    } else {
      return err(F("BADARG"), F("RELAY <n> ON|OFF|PULSE <ms>"));
    }
    return ok();
  }
  if (strcasecmp(cmd, "LED") == 0) {
    if (argc < 3 || !parseNumber(argv[1], 1, 16, &n)) return err(F("BADARG"), F("LED <n> ON|OFF|BLINK <on>,<off>"));
    if (n > COUNT(LED_PINS)) return err(F("NOTSUP"), F("no such LED"));
    size_t i = n - 1;
    unsigned long t[2];
    if (argc == 3 && strcasecmp(argv[2], "ON") == 0) setLed(i, true, true, 0, 0);
    else if (argc == 3 && strcasecmp(argv[2], "OFF") == 0) setLed(i, true, false, 0, 0);
    else if (argc == 4 && strcasecmp(argv[2], "BLINK") == 0 && parseList(argv[3], t, 2) == 2) setLed(i, false, true, t[0], t[1]);
    else return err(F("BADARG"), F("LED <n> ON|OFF|BLINK <on>,<off>"));
    return ok();
  }
  err(F("UNKNOWN"), F("unknown command"));
}

// §2: CR or LF ends a line; empty lines are ignored; longer than 80 bytes is ERR TOOLONG.
static char lineBuf[MAX_LINE + 1];
static size_t lineLen = 0;
static bool lineTooLong = false;
static bool lineBadChar = false;

static void readSerial(unsigned long now) {
  while (Serial.available() > 0) {
    int c = Serial.read();
    if (c == '\r' || c == '\n') {
      if (lineTooLong) err(F("TOOLONG"), F("line over 80 bytes"));
      else if (lineBadChar) err(F("BADCHAR"), F("byte outside printable ASCII"));
      else if (lineLen > 0) {
        lineBuf[lineLen] = 0;
        lastHostLine = now;
        hostSeen = true;
        handleLine(lineBuf);
      }
      lineLen = 0;
      lineTooLong = lineBadChar = false;
    } else if (lineLen == MAX_LINE) {
      lineTooLong = true;
    } else if (!lineTooLong) {
      if ((c < 0x20 && c != '\t') || c > 0x7e) lineBadChar = true;
      lineBuf[lineLen++] = (char)c;
    }
  }
}

// ---- Arduino entry points --------------------------------------------------------------------
void setup() {
  Serial.begin(BAUD);
  hook.begin(PIN_HOOK, HOOK_DEBOUNCE_MS);
  if (PIN_PULSE >= 0) pulse.begin(PIN_PULSE, PULSE_DEBOUNCE_MS);
  if (PIN_OFF_NORMAL >= 0) offNormal.begin(PIN_OFF_NORMAL, PULSE_DEBOUNCE_MS);
  for (size_t i = 0; i < COUNT(BUTTON_PINS); i++) buttons[i].begin(BUTTON_PINS[i], BUTTON_DEBOUNCE_MS);
  pinMode(PIN_RINGER, OUTPUT);
  if (PIN_RING_FR >= 0) pinMode(PIN_RING_FR, OUTPUT);
  ringOff();
  for (size_t i = 0; i < COUNT(RELAY_PINS); i++) {
    pinMode(RELAY_PINS[i], OUTPUT);
    setRelay(i, false);
  }
  for (size_t i = 0; i < COUNT(LED_PINS); i++) {
    pinMode(LED_PINS[i], OUTPUT);
    setLed(i, true, false, 0, 0);
  }
#if USE_KEYPAD
  for (size_t r = 0; r < COUNT(KEYPAD_ROWS); r++) pinMode(KEYPAD_ROWS[r], INPUT_PULLUP);
  for (size_t c = 0; c < COUNT(KEYPAD_COLS); c++) pinMode(KEYPAD_COLS[c], INPUT_PULLUP);
#endif
  sendHello();                            // §4.3: announce after boot
}

void loop() {
  unsigned long now = millis();
  readSerial(now);
  updateInputs(now);
  updateRinger(now);
  updateRelays(now);
  updateLeds(now);
  failSafe(now);
}
