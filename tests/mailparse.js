// Parses one RFC 5322 message from stdin with Node's mailparser (an independent parser) and
// prints what a mail client would read from it as JSON. Used by tests/independent_parsers.py.
const { simpleParser } = require("mailparser");

const chunks = [];
process.stdin.on("data", (c) => chunks.push(c));
process.stdin.on("end", async () => {
  const parsed = await simpleParser(Buffer.concat(chunks));
  const list = parsed.headers.get("list") || {};
  const unsubscribe = list.unsubscribe || {};
  process.stdout.write(
    JSON.stringify({
      unsubscribe_url: unsubscribe.url || null,
      unsubscribe_mail: unsubscribe.mail || null,
      list_unsubscribe_post: (list["unsubscribe-post"] || {}).name || null,
      list_id: list.id ? { name: list.id.name || null, id: list.id.id || null } : null,
      message_id: parsed.messageId || null,
      date: parsed.date ? parsed.date.toISOString() : null,
      subject: parsed.subject || null,
      html: parsed.html || null,
      text: parsed.text || null,
    }),
  );
});
