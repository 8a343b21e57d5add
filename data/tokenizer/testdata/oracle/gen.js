// gen.js writes the oracle golden file of lethe's tokenizer package: every
// normalizer, pre-tokenizer, model, added-token option, post-processor,
// decoder, truncation and padding mode of tokenizer.json, run through Hugging
// Face tokenizers (the Rust library, through its Node binding) on hard
// strings. oracle_test.go checks lethe against it number for number.
//
// To rerun it:
//
//	cd "$(mktemp -d)" && npm install tokenizers@0.23.2
//	NODE_PATH=$PWD/node_modules node /path/to/lethe/data/tokenizer/testdata/oracle/gen.js
//
// It reads models.json.gz (the base vocabularies) and writes golden.json.gz,
// both beside this file. The base vocabularies were trained once with the
// same binding on public-domain text and pruned to a few thousand entries:
//
//	NODE_PATH=... node gen.js models /path/to/corpus-dir
//
// retrains them from every *.txt of that folder (lethe used
// shared/fixtures/corpus; non-UTF-8 files are read as Latin-1), plus half of
// the test strings, so that the other half has characters the models do not
// know. Retraining changes the golden file but not what it checks.
//
// GEN_DEBUG=1 prints each tokenizer and text before encoding it (Hugging
// Face aborts the whole process when a component panics).
//
// Golden layout: {"texts": [...], "models": {...} (in models.json.gz),
// "tokenizers": [{"name", "group", "json", "cases", "batches", "decodes"}]}.
// A tokenizer's json is a tokenizer.json whose "model" may be
// {"$ref": NAME, ...overrides}: the base model NAME with the fields given
// replaced. A case is {"t": text index, "p": pair text index (optional),
// "special": add_special_tokens, "pre" (pre-tokenizer tests: the
// pre-tokenizer alone on the text, [piece, char start, char end] as
// preTokenizeString gives them), "normalized" (normalizer tests: the
// normalizer alone), then either "error" or ids, tokens,
// offsets (in characters, as the binding reports them), type_ids,
// special_tokens_mask, attention_mask, decoded (skip_special_tokens false)
// and decoded_skip (true)}. A decode is {"ids", "decoded", "decoded_skip"}
// for id lists that no encoding produces (invalid UTF-8, out-of-range ids).
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const tk = require('tokenizers');
const { Tokenizer } = tk;

const HERE = __dirname;
const MODELS = path.join(HERE, 'models.json.gz');
const GOLDEN = path.join(HERE, 'golden.json.gz');

// ---------------------------------------------------------------- texts ---

// CORE is the main list of hard strings; every tokenizer is run on it unless
// it says otherwise.
const CORE = [
  '',
  'Hello world',
  '  leading and trailing spaces  ',
  'multiple   spaces\tand\t\ttabs\n\nnewlines \n \n',
  'CRLF line\r\nnext line\r\n\r\nend',
  'nbsp\u00a0here and\u2009thin\u2003em\u3000ideographic\u202fnarrow\u205fmath\u1680ogham',
  'café naïve résumé Ångström',
  'cafe\u0301 nai\u0308ve A\u0300\u0301\u0302 o\u0328\u0304',
  '\u212b\u2126\u212a ﬁ ﬀ ﬃ ① ² ½ ｆｕｌｌｗｉｄｔｈ ＡＢＣ１２３ 𝐀𝐁𝐂 𝟏𝟐𝟑',
  '日本語のテキスト、中文字符。한국어 각 \u1100\u1161\u11a8',
  'हिन्दी देवनागरी का क्षत्रिय',
  'ภาษาไทย สวัสดีครับ',
  'مرحبا بالعالم! שָׁלוֹם עולם',
  'emoji 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ 🫠🥹 1\u20e3 a\u20dd',
  "I'm you're he's we've they'll I'd can't won't",
  "I'M YOU'RE HE'S WE'VE THEY'LL I'D CAN'T",
  "'S 'ſ 'Ll 'rE 'VE o'clock rock'n'roll ''s",
  'numbers 1234567890 3.14159 1,000,000 ١٢٣٤ ²³ Ⅻ ⅷ',
  'def f(x):\n    return x**2  # comment\n\tif (a&&b) {c++;} // done',
  'ctrl\u0000null\u0001\u0007bell\u001b[0m\u007f del\u0085nel\u200bzw\u200d\ufeffbom \ufffd rep',
  '<s>[CLS] text [SEP]</s><unk>[MASK]<pad> <|endoftext|>',
  'İstanbul İİ ΣΊΣΥΦΟΣ ΌΣΟΣ ẞ ǅ Ǆ ǆ ΐ',
  '\u0915\u093e \u0915\u0940 \u0d15\u0d4a 1\u20e3 \u0488x\u0489',
  '▁already▁has▁metaspace ▁ ▁▁',
  'Wait... what?!? (yes) [no] {maybe} «quotes» „German“ — dash – en ‿',
  'a',
  ' ',
  '\n',
  '   ',
  'https://example.com/path?q=1&r=2#frag user@example.org',
  'abc日本def x²y abc123def456 HeLLo WoRLD ÀÉÎÕÜ',
  'line\u2028sep\u2029para\u000bvt\u000cff\u001cfs\u001dgs',
  'می‌خواهم zwnj\u200cjoin',
  'private \ue000 use \u0378 unassigned \u{10FFFD} plane',
  'The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX!',
  'tabs\t\t\tand  double  spaces  everywhere   ',
  '\u00a0\u00a0leading nbsp',
  '\u3000\u3000全角スペース\u3000',
  'under_score snake_case CamelCase kebab-case dot.case',
  '$100.00 €50 £20 ¥1000 ₹500 50% #hash @user ~tilde',
  'ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ Ǳ ǲ ǳ',
  'Ⅰ Ⅱ Ⅲ ㎏ ㎞ ℃ ℉ № ™ ℡',
  'We the People of the United States, in Order to form a more perfect Union, ' +
    'establish Justice, insure domestic Tranquility, provide for the common defence, ' +
    'promote the general Welfare, and secure the Blessings of Liberty to ourselves and ' +
    'our Posterity, do ordain and establish this Constitution for the United States of America.',
  'Mixed: English, français, Deutsch (Größe), español (año), русский язык, ελληνικά, ' +
    '日本語, 中文, 한국어, हिन्दी, العربية, עברית, ไทย — and emoji 🎉🚀✨ with numbers 2024-01-15 ' +
    'at 10:30am; code `x = y[0] + z.get("k", 1)`; math ∑∫√∞≠≤≥ ± × ÷.\r\n\tEnd.  ',
];

// SMALL is a shorter list for the many variants of one component.
const SMALL = [
  '',
  'Hello world',
  '  leading and trailing spaces  ',
  'multiple   spaces\tand\t\ttabs\n\nnewlines \n \n',
  'CRLF line\r\nnext line\r\n',
  'nbsp\u00a0here\u3000there',
  'cafe\u0301 naïve',
  '日本語のテキスト',
  "I'm you're HE'S 'ſ",
  'numbers 1234567890 3.14',
  'def f(x):\n    return x**2',
  'emoji 👍🏽 👨‍👩‍👧‍👦',
  'Wait... what?!? (yes) -- no--',
  'a',
  ' ',
  '▁already▁has ▁ metaspace',
  'axxb xx bx',
];

// PAIRS are (first, second) text pairs for pair encodings.
const PAIRS = [
  ['Hello world', 'How are you?'],
  ['', 'second only'],
  ['first only', ''],
  ['', ''],
  ['The quick brown fox jumps over the lazy dog', 'short'],
  ['short', 'The quick brown fox jumps over the lazy dog again and again'],
  ['  spaced  out  ', '\tand tabbed\n'],
  ['日本語のテキスト', 'café naïve'],
  ['one two three four five six seven', 'eight nine ten eleven twelve thirteen'],
];

// BATCH is a list of texts for encodeBatch (padding).
const BATCH = ['Hello world', '', 'The quick brown fox jumps over the lazy dog', 'a', '日本語 text'];

const texts = [];
const textIndex = new Map();
function ti(s) {
  if (!textIndex.has(s)) {
    textIndex.set(s, texts.length);
    texts.push(s);
  }
  return textIndex.get(s);
}

// ------------------------------------------------------------ training ---

function readCorpus(dir) {
  const out = [];
  for (const f of fs.readdirSync(dir).sort()) {
    if (!f.endsWith('.txt')) continue;
    const buf = fs.readFileSync(path.join(dir, f));
    let s = buf.toString('utf8');
    if (s.includes('\ufffd')) s = buf.toString('latin1');
    out.push(s);
  }
  return out.join('\n');
}

async function trainModels(corpusDir) {
  // Half of the core strings join the corpus: the other half keeps characters
  // that the models have never seen.
  const extra = CORE.filter((_, i) => i % 2 === 0).join('\n');
  const tmp = fs.mkdtempSync(path.join(require('os').tmpdir(), 'lethe-oracle-'));
  const file = path.join(tmp, 'corpus.txt');
  fs.writeFileSync(file, readCorpus(corpusDir) + '\n' + extra + '\n');
  const train = (model, pre) => {
    const t = new Tokenizer(model);
    t.setPreTokenizer(pre);
    t.train([file]);
    const out = path.join(tmp, 'model.json');
    t.save(out);
    return JSON.parse(fs.readFileSync(out, 'utf8')).model;
  };
  const models = {};

  // Byte-level BPE (GPT-2 style): 256 byte characters, then 1500 merges.
  {
    const m = train(tk.BPE.empty(), tk.byteLevelPreTokenizer(false, true));
    const vocab = {};
    for (const c of tk.byteLevelAlphabet().sort()) vocab[c] = Object.keys(vocab).length;
    const merges = [];
    for (const [a, b] of m.merges) {
      if (merges.length === 1500) break;
      if (!(a in vocab) || !(b in vocab)) continue;
      merges.push([a, b]);
      if (!((a + b) in vocab)) vocab[a + b] = Object.keys(vocab).length;
    }
    models.bl_bpe = bpeModel(vocab, merges);
  }
  // SentencePiece-style BPE: <unk> <s> </s>, 256 byte tokens, the characters
  // seen at least 3 times, then 1500 merges.
  {
    const m = train(tk.BPE.empty(), tk.metaspacePreTokenizer('▁', 'always', true));
    const vocab = { '<unk>': 0, '<s>': 1, '</s>': 2 };
    for (let b = 0; b < 256; b++) vocab['<0x' + b.toString(16).toUpperCase().padStart(2, '0') + '>'] = Object.keys(vocab).length;
    const counts = charCounts(fs.readFileSync(file, 'utf8'));
    for (const tok of Object.keys(m.vocab).sort((x, y) => m.vocab[x] - m.vocab[y])) {
      if ([...tok].length === 1 && ((counts.get(tok) || 0) >= 3 || tok === '▁')) vocab[tok] = Object.keys(vocab).length;
    }
    const merges = [];
    for (const [a, b] of m.merges) {
      if (merges.length === 1500) break;
      if (!(a in vocab) || !(b in vocab)) continue;
      merges.push([a, b]);
      if (!((a + b) in vocab)) vocab[a + b] = Object.keys(vocab).length;
    }
    models.sp_bpe = bpeModel(vocab, merges, { unk_token: '<unk>', byte_fallback: true, fuse_unk: true });
  }
  // WordPiece: BERT's special tokens, then the first 2500 trained tokens.
  {
    const m = train(tk.WordPiece.empty(), tk.bertPreTokenizer());
    const vocab = { '[PAD]': 0, '[UNK]': 1, '[CLS]': 2, '[SEP]': 3, '[MASK]': 4 };
    for (const tok of Object.keys(m.vocab).sort((x, y) => m.vocab[x] - m.vocab[y])) {
      if (Object.keys(vocab).length === 2505) break;
      if (!(tok in vocab)) vocab[tok] = Object.keys(vocab).length;
    }
    models.wp = { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab };
  }
  // Unigram: <unk> <s> </s>, the 2000 best pieces and every single
  // character the trainer kept (seen at least 3 times); the 256 byte tokens
  // come last, for byte_fallback.
  {
    const m = train(tk.Unigram.empty(), tk.metaspacePreTokenizer('▁', 'always', true));
    const counts = charCounts(fs.readFileSync(file, 'utf8'));
    const best = m.vocab.slice().sort((x, y) => y[1] - x[1]);
    const keep = new Set(best.slice(0, 2000).map((p) => p[0]));
    const vocab = [['<unk>', 0], ['<s>', 0], ['</s>', 0]];
    for (const [p, s] of m.vocab) {
      const single = [...p].length === 1 && ((counts.get(p) || 0) >= 3 || p === '▁');
      if (keep.has(p) || single) vocab.push([p, s]);
    }
    for (let b = 0; b < 256; b++) vocab.push(['<0x' + b.toString(16).toUpperCase().padStart(2, '0') + '>', 0]);
    models.uni = { type: 'Unigram', unk_id: 0, vocab, byte_fallback: false };
  }
  // BPE with a continuing-subword prefix and an end-of-word suffix, which
  // the binding's trainer does not make: a small BPE trainer follows.
  models.bpe_fix = miniBPE(fs.readFileSync(file, 'utf8'), 800, '##', '</w>');
  models.bpe_suffix = miniBPE(fs.readFileSync(file, 'utf8'), 500, '', '</w>');
  models.bpe_prefix = miniBPE(fs.readFileSync(file, 'utf8'), 500, '##', '');
  fs.writeFileSync(MODELS, zlib.gzipSync(JSON.stringify(models), { level: 9 }));
  console.log('wrote', MODELS);
}

function charCounts(s) {
  const m = new Map();
  for (const c of s) m.set(c, (m.get(c) || 0) + 1);
  return m;
}

function bpeModel(vocab, merges, opts = {}) {
  return Object.assign({
    type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
    fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges,
  }, opts);
}

// miniBPE trains a BPE whose non-initial symbols carry prefix and whose
// final symbol carries suffix, as Hugging Face's BpeTrainer does with
// continuing_subword_prefix and end_of_word_suffix.
function miniBPE(text, nMerges, prefix, suffix) {
  const words = new Map();
  for (const w of text.match(/[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu) || []) words.set(w, (words.get(w) || 0) + 1);
  const counts = charCounts(text);
  const vocab = { '<unk>': 0 };
  const add = (t) => { if (!(t in vocab)) vocab[t] = Object.keys(vocab).length; };
  const seqs = [];
  for (const [w, n] of words) {
    const cs = [...w];
    if (cs.some((c) => (counts.get(c) || 0) < 3)) continue;
    const syms = cs.map((c, i) => (i > 0 ? prefix : '') + c + (i === cs.length - 1 ? suffix : ''));
    syms.forEach(add);
    seqs.push([syms, n]);
  }
  // Every known character in every position.
  for (const c of [...counts.keys()].sort()) {
    if (counts.get(c) < 3 || /\s/u.test(c)) continue;
    add(c); add(prefix + c); add(c + suffix); add(prefix + c + suffix);
  }
  const merges = [];
  for (let k = 0; k < nMerges; k++) {
    const pc = new Map();
    for (const [syms, n] of seqs) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const key = syms[i] + '\u0000' + syms[i + 1];
        pc.set(key, (pc.get(key) || 0) + n);
      }
    }
    let best = null, bestN = 0;
    for (const [key, n] of pc) if (n > bestN || (n === bestN && key < best)) { best = key; bestN = n; }
    if (!best) break;
    const [a, b] = best.split('\u0000');
    const merged = a + b.slice(prefix.length);
    merges.push([a, b]);
    add(merged);
    for (const s of seqs) {
      const syms = s[0], out = [];
      for (let i = 0; i < syms.length; i++) {
        if (i + 1 < syms.length && syms[i] === a && syms[i + 1] === b) { out.push(merged); i++; } else out.push(syms[i]);
      }
      s[0] = out;
    }
  }
  return bpeModel(vocab, merges, {
    unk_token: '<unk>', continuing_subword_prefix: prefix || null, end_of_word_suffix: suffix || null,
  });
}

// ---------------------------------------------------------- tokenizers ---

const BYTE_LEVEL = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
const BL_DEC = { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true };
const META = (scheme = 'always', split = true) => ({ type: 'Metaspace', replacement: '▁', prepend_scheme: scheme, split });
const LLAMA_DEC = {
  type: 'Sequence', decoders: [
    { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
    { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 },
  ],
};
const WP_DEC = { type: 'WordPiece', prefix: '##', cleanup: true };
const ref = (name, over = {}) => Object.assign({ $ref: name }, over);

function tj(o) {
  return Object.assign({
    version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null,
    pre_tokenizer: null, post_processor: null, decoder: null,
  }, o);
}

// added builds added_tokens entries with ids from start, in order.
function added(start, list) {
  return list.map((a, i) => Object.assign({
    id: start + i, content: a.content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: false,
  }, a));
}

function special(content, id) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

const SPLIT_BEHAVIORS = ['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'];

function tokenizerSpecs(models) {
  const specs = [];
  const add = (group, name, json, opts = {}) => specs.push(Object.assign({ group, name, json }, opts));
  const blVocab = Object.keys(models.bl_bpe.vocab).length;
  const spVocab = Object.keys(models.sp_bpe.vocab).length;
  const wpVocab = models.wp.vocab;
  const uniLen = models.uni.vocab.length;

  // Normalizers, on a byte-level BPE so that every normalized byte shows.
  const bl = (normalizer, extra = {}) => tj(Object.assign({
    normalizer, pre_tokenizer: BYTE_LEVEL, decoder: BL_DEC, model: ref('bl_bpe'),
  }, extra));
  const norms = {
    nfc: { type: 'NFC' }, nfd: { type: 'NFD' }, nfkc: { type: 'NFKC' }, nfkd: { type: 'NFKD' },
    lowercase: { type: 'Lowercase' },
    strip_accents: { type: 'StripAccents' },
    nfd_strip_accents: { type: 'Sequence', normalizers: [{ type: 'NFD' }, { type: 'StripAccents' }] },
    nfkd_strip_accents_lower: { type: 'Sequence', normalizers: [{ type: 'NFKD' }, { type: 'StripAccents' }, { type: 'Lowercase' }] },
    prepend: { type: 'Prepend', prepend: '▁' },
    prepend_multi: { type: 'Prepend', prepend: '>> ' },
    replace_string: { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
    replace_string_multi: { type: 'Replace', pattern: { String: 'll' }, content: 'L' },
    replace_string_grow: { type: 'Replace', pattern: { String: 'e' }, content: '<E>' },
    replace_string_delete: { type: 'Replace', pattern: { String: 'a' }, content: '' },
    replace_regex: { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' },
    replace_regex_delete: { type: 'Replace', pattern: { Regex: '[aeiou]+' }, content: '' },
    replace_regex_unicode: { type: 'Replace', pattern: { Regex: '\\p{Han}+|\\d' }, content: '#' },
    strip: { type: 'Strip', strip_left: true, strip_right: true },
    strip_left: { type: 'Strip', strip_left: true, strip_right: false },
    strip_right: { type: 'Strip', strip_left: false, strip_right: true },
    nmt: { type: 'Nmt' },
    sequence: { type: 'Sequence', normalizers: [{ type: 'Nmt' }, { type: 'NFKC' }, { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' }, { type: 'Strip', strip_left: true, strip_right: true }, { type: 'Lowercase' }] },
    empty_sequence: { type: 'Sequence', normalizers: [] },
  };
  // (A Replace whose regex matches the empty string is left out: Hugging
  // Face panics on it, index out of bounds in NormalizedString::replace.)
  for (const [k, n] of Object.entries(norms)) add('normalizer', 'n_' + k, bl(n));
  for (const clean of [true, false]) for (const chinese of [true, false]) for (const strip of [true, false, null]) for (const lower of [true, false]) {
    if (!clean && !chinese && strip === null) continue;
    add('normalizer', `n_bert_c${+clean}_h${+chinese}_s${strip === null ? 'null' : +strip}_l${+lower}`,
      bl({ type: 'BertNormalizer', clean_text: clean, handle_chinese_chars: chinese, strip_accents: strip, lowercase: lower }),
      { texts: clean && chinese ? CORE : SMALL.concat(CORE.slice(5, 14), CORE.slice(19, 23)) });
  }
  // The ByteLevel normalizer with a pre-tokenizer that splits its output.
  add('normalizer', 'n_bytelevel', tj({
    normalizer: { type: 'ByteLevel' },
    pre_tokenizer: { type: 'Split', pattern: { String: 'Ġ' }, behavior: 'MergedWithNext', invert: false },
    decoder: BL_DEC, model: ref('bl_bpe'),
  }));

  // Pre-tokenizers, on the SentencePiece-style BPE with byte fallback
  // (every character shows, as itself or as its bytes); no decoder, so
  // decoding joins tokens with spaces.
  const sp = (pre, extra = {}) => tj(Object.assign({ pre_tokenizer: pre, model: ref('sp_bpe') }, extra));
  for (const aps of [false, true]) for (const re of [true, false]) {
    add('pre_tokenizer', `p_bytelevel_aps${+aps}_re${+re}`, tj({
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: aps, trim_offsets: true, use_regex: re },
      decoder: BL_DEC, model: ref('bl_bpe'),
    }));
  }
  const splitPatterns = {
    ws: { Regex: '\\s+' },
    space: { String: ' ' },
    dash2: { String: '--' },
    punct: { Regex: '\\p{P}+' },
    empty: { Regex: 'x*' },
    emptystr: { String: '' },
    lookahead: { Regex: '\\s+(?!\\S)|\\s+' },
    ci: { Regex: '(?i)the|ll' },
  };
  for (const [pn, pat] of Object.entries(splitPatterns)) {
    for (const beh of SPLIT_BEHAVIORS) for (const inv of [false, true]) {
      if ((pn === 'lookahead' || pn === 'ci' || pn === 'emptystr') && inv) continue;
      add('pre_tokenizer', `p_split_${pn}_${beh}${inv ? '_inv' : ''}`,
        sp({ type: 'Split', pattern: pat, behavior: beh, invert: inv }), { texts: SMALL });
    }
  }
  // The Split regexes of GPT-2, Llama 3 and Qwen 2 (lethe scans them by hand).
  const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
  const LLAMA3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  const QWEN2 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  // GPT-4o's (o200k) and DeepSeek V3's patterns: case classes, \p{M},
  // (?i:) contractions after words, CJK ranges.
  const O200K = "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  const DEEPSEEK = [
    '\\p{N}{1,3}',
    '[一-龥\u3040-ゟ゠-ヿ]+',
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
  ];
  add('pre_tokenizer', 'p_split_regex_o200k', tj({
    pre_tokenizer: { type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { Regex: O200K }, behavior: 'Isolated', invert: false },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }] },
    decoder: BL_DEC, model: ref('bl_bpe'),
  }));
  add('pre_tokenizer', 'p_split_regex_deepseek', tj({
    pre_tokenizer: { type: 'Sequence', pretokenizers: DEEPSEEK.map((re) => ({ type: 'Split', pattern: { Regex: re }, behavior: 'Isolated', invert: false }))
      .concat([{ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }]) },
    decoder: BL_DEC, model: ref('bl_bpe'),
  }));
  // \w, \d, \s and \b as Oniguruma understands them (Unicode), on
  // scripts with spacing marks.
  add('pre_tokenizer', 'p_split_regex_word', sp({ type: 'Split', pattern: { Regex: '\\w+|\\d|\\s|\\b' }, behavior: 'Isolated', invert: false }));
  add('pre_tokenizer', 'p_split_regex_nonword', sp({ type: 'Split', pattern: { Regex: '[\\W_]+' }, behavior: 'Removed', invert: false }));
  add('pre_tokenizer', 'p_split_regex_word_class', sp({ type: 'Split', pattern: { Regex: '[\\w\\-]+|[^\\w\\s]' }, behavior: 'Isolated', invert: false }));
  // (Oniguruma's full case folding, which makes (?i:s) match ſ, is not
  // emulated by lethe: no ſ under (?i) here.)
  add('pre_tokenizer', 'p_split_regex_hex_ci', sp({ type: 'Split', pattern: { Regex: '\\h+|(?i:k|é)' }, behavior: 'Isolated', invert: false }),
    { texts: SMALL.filter((t) => !t.includes('ſ')).concat(['deadBEEF 0x1F zz', 'ask Kelvin \u212a sKy ÉCOLE école']) });
  for (const [pn, re] of [['gpt2', GPT2], ['llama3', LLAMA3], ['qwen2', QWEN2]]) {
    add('pre_tokenizer', `p_split_regex_${pn}`, tj({
      pre_tokenizer: { type: 'Sequence', pretokenizers: [
        { type: 'Split', pattern: { Regex: re }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }] },
      decoder: BL_DEC, model: ref('bl_bpe'),
    }));
  }
  for (const scheme of ['always', 'first', 'never']) for (const split of [true, false]) {
    add('pre_tokenizer', `p_metaspace_${scheme}_split${+split}`, sp(META(scheme, split), {
      decoder: { type: 'Sequence', decoders: [{ type: 'ByteFallback' }, META(scheme, split)] },
      added_tokens: [special('<s>', 1), special('</s>', 2)],
    }), { texts: CORE.concat(['<s>Hello</s> world<s> x', '</s>', ' <s> ']) });
  }
  // (add_prefix_space false without prepend_scheme is an error in Hugging
  // Face 0.23: "add_prefix_space does not match declared prepend_scheme".)
  for (const aps of [true]) {
    add('pre_tokenizer', `p_metaspace_legacy_aps${+aps}`, sp(
      { type: 'Metaspace', replacement: '▁', add_prefix_space: aps },
      { decoder: { type: 'Metaspace', replacement: '▁', add_prefix_space: aps } }), { texts: SMALL });
  }
  add('pre_tokenizer', 'p_metaspace_replacement', sp(
    { type: 'Metaspace', replacement: '_', prepend_scheme: 'always', split: true },
    { decoder: { type: 'Metaspace', replacement: '_', prepend_scheme: 'always', split: true } }), { texts: SMALL });
  add('pre_tokenizer', 'p_bert', sp({ type: 'BertPreTokenizer' }));
  add('pre_tokenizer', 'p_whitespace', sp({ type: 'Whitespace' }));
  add('pre_tokenizer', 'p_whitespace_split', sp({ type: 'WhitespaceSplit' }));
  add('pre_tokenizer', 'p_digits', sp({ type: 'Digits', individual_digits: false }));
  add('pre_tokenizer', 'p_digits_individual', sp({ type: 'Digits', individual_digits: true }));
  for (const beh of SPLIT_BEHAVIORS) add('pre_tokenizer', `p_punctuation_${beh}`, sp({ type: 'Punctuation', behavior: beh }), { texts: beh === 'Isolated' ? CORE : SMALL });
  add('pre_tokenizer', 'p_chardelim_dash', sp({ type: 'CharDelimiterSplit', delimiter: '-' }), { texts: SMALL.concat(['a-b--c-', '-', 'kebab-case-words']) });
  add('pre_tokenizer', 'p_chardelim_cjk', sp({ type: 'CharDelimiterSplit', delimiter: '。' }), { texts: SMALL.concat(['文。字。。', '。']) });
  add('pre_tokenizer', 'p_fixed_length3', sp({ type: 'FixedLength', length: 3 }));
  add('pre_tokenizer', 'p_fixed_length_default', sp({ type: 'FixedLength' }), { texts: SMALL });
  add('pre_tokenizer', 'p_sequence', sp({ type: 'Sequence', pretokenizers: [
    { type: 'WhitespaceSplit' }, { type: 'Punctuation', behavior: 'Isolated' }, { type: 'Digits', individual_digits: true }] }));
  add('pre_tokenizer', 'p_sequence_empty', sp({ type: 'Sequence', pretokenizers: [] }), { texts: SMALL });

  // Models.
  const wp = (model, extra = {}) => tj(Object.assign({
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: false },
    pre_tokenizer: { type: 'BertPreTokenizer' }, decoder: WP_DEC, model,
  }, extra));
  add('model', 'm_wordpiece', wp(ref('wp')));
  add('model', 'm_wordpiece_max5', wp(ref('wp', { max_input_chars_per_word: 5 })), { texts: SMALL });
  const atVocab = {};
  for (const [t, id] of Object.entries(wpVocab)) atVocab[t.startsWith('##') ? '@@' + t.slice(2) : t] = id;
  add('model', 'm_wordpiece_prefix', wp(ref('wp', { continuing_subword_prefix: '@@', vocab: atVocab }),
    { decoder: { type: 'WordPiece', prefix: '@@', cleanup: false } }), { texts: SMALL });
  add('model', 'm_wordpiece_raw', tj({ pre_tokenizer: { type: 'WhitespaceSplit' }, decoder: WP_DEC, model: ref('wp') }));
  const uni = (over, extra = {}) => tj(Object.assign({
    pre_tokenizer: META(), decoder: { type: 'Sequence', decoders: [{ type: 'ByteFallback' }, META()] }, model: ref('uni', over),
  }, extra));
  add('model', 'm_unigram', uni({}));
  add('model', 'm_unigram_byte_fallback', uni({ byte_fallback: true }));
  add('model', 'm_unigram_no_unk', uni({ unk_id: null }));
  add('model', 'm_unigram_no_unk_byte_fallback', uni({ unk_id: null, byte_fallback: true }));
  add('model', 'm_unigram_unk_last', uni({ unk_id: 3 }), { texts: SMALL });
  add('model', 'm_unigram_nfkc_lower', uni({}, { normalizer: { type: 'Sequence', normalizers: [{ type: 'NFKC' }, { type: 'Lowercase' }] } }), { texts: SMALL });
  // BPE.
  const spb = (over, extra = {}) => tj(Object.assign({ pre_tokenizer: META(), decoder: LLAMA_DEC, model: ref('sp_bpe', over) }, extra));
  add('model', 'm_bpe_byte_fallback', spb({}));
  add('model', 'm_bpe_unk_fuse', spb({ byte_fallback: false, fuse_unk: true }));
  add('model', 'm_bpe_unk_nofuse', spb({ byte_fallback: false, fuse_unk: false }));
  add('model', 'm_bpe_no_unk', spb({ byte_fallback: false, unk_token: null }));
  add('model', 'm_bpe_byte_fallback_no_unk', spb({ unk_token: null }));
  add('model', 'm_bpe_merges_strings', spb({ merges: models.sp_bpe.merges.map((m) => m.join(' ')) }));
  // ignore_merges: whole words in the vocabulary win over merges.
  const igVocab = Object.assign({}, models.bl_bpe.vocab);
  for (const w of ['Ġworld', 'Hello', 'Ġthe', 'Ġquick', 'Ġbrown', 'Ġfox', 'Ġdog', 'ing', 'Ġcafe']) if (!(w in igVocab)) igVocab[w] = Object.keys(igVocab).length;
  for (const ig of [false, true]) {
    add('model', `m_bpe_ignore_merges${+ig}`, tj({
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      decoder: BL_DEC, model: ref('bl_bpe', { ignore_merges: ig, vocab: igVocab }),
    }), { texts: SMALL.concat(['The quick brown fox jumps over the lazy dog.', 'Hello world and the worldwide cafe']) });
  }
  add('model', 'm_bpe_prefix_suffix', tj({
    pre_tokenizer: { type: 'Whitespace' }, decoder: { type: 'BPEDecoder', suffix: '</w>' }, model: ref('bpe_fix'),
  }));
  add('model', 'm_bpe_suffix', tj({
    pre_tokenizer: { type: 'Whitespace' }, decoder: { type: 'BPEDecoder', suffix: '</w>' }, model: ref('bpe_suffix'),
  }), { texts: SMALL });
  add('model', 'm_bpe_prefix', tj({
    pre_tokenizer: { type: 'Whitespace' }, decoder: WP_DEC, model: ref('bpe_prefix'),
  }), { texts: SMALL });
  add('model', 'm_bpe_prefix_nofuse', tj({
    pre_tokenizer: { type: 'Whitespace' }, decoder: WP_DEC, model: ref('bpe_prefix', { fuse_unk: true }),
  }), { texts: SMALL });

  // Added tokens.
  const at = (list, extra = {}) => tj(Object.assign({
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    decoder: BL_DEC, model: ref('bl_bpe'), added_tokens: added(blVocab, list),
  }, extra));
  const AT_TEXTS = [
    '', 'plain text', '<s>', '<s><s>', 'a<s>b', ' <s> ', '<|im_start|>user\nhi<|im_end|>',
    'x <mask> y', 'x<mask>y', 'x   <mask>   y', '<mask>', '   <mask>', '<mask>   ',
    'the word is word, words and sword; word', 'word', 'wordword', '_word_', 'é word', 'word2 word_ 2word',
    'a [lr]  b', '[lr][lr]', ' \t[lr]\n ', 'HELLO hello Hello hElLo', 'HeLLo',
    '<|a|><|b|>', '<|a|><|b', '<|a|<|a|>', '<|a|><|a|><|b|>', 'x<|a|><|b|>y<|a|>',
    '日本<s>語', '<s>日本 語<mask>', 'café<mask>café', 'NFKC ﬁ ① test', 'under [LR] lr',
    '[CLS]hello[SEP]', '[cls] lower', 'MiXeD <MASK> and <Mask>',
  ];
  add('added', 'a_basic', at([
    { content: '<s>', special: true }, { content: '</s>', special: true },
    { content: '<|im_start|>', special: true }, { content: '<|im_end|>', special: true },
    { content: '<mask>', special: false, lstrip: true },
    { content: '[lr]', special: false, lstrip: true, rstrip: true },
    { content: 'word', special: false, single_word: true },
    { content: '<|a|>', special: true }, { content: '<|a|><|b|>', special: false }, { content: '<|a', special: false },
  ]), { texts: AT_TEXTS });
  add('added', 'a_strip_special', at([
    { content: '<mask>', special: true, lstrip: true, rstrip: true },
    { content: 'word', special: true, single_word: true, rstrip: true },
    { content: '<s>', special: true, lstrip: true },
  ]), { texts: AT_TEXTS });
  const lower = { type: 'Lowercase' };
  add('added', 'a_normalized_lower', at([
    { content: 'hello', special: false, normalized: true },
    { content: 'HeLLo', special: false, normalized: false },
    { content: '<MASK>', special: true, normalized: true },
    { content: '[CLS]', special: true, normalized: false },
    { content: '[LR]', special: false, normalized: true, lstrip: true, rstrip: true },
  ], { normalizer: lower }), { texts: AT_TEXTS });
  add('added', 'a_normalized_nfkc', at([
    { content: 'ﬁ', special: false, normalized: true },
    { content: '①', special: false, normalized: false },
    { content: 'café', special: true, normalized: true },
  ], { normalizer: { type: 'NFKC' } }), { texts: AT_TEXTS });
  // Added tokens whose content is in the model's vocabulary keep its id.
  const blv = models.bl_bpe.vocab;
  add('added', 'a_in_vocab', at([], { added_tokens: [
    Object.assign(special('Ġthe', blv['Ġthe'])),
    Object.assign(special('in', blv['in']), { special: false }),
    special('<s>', blVocab),
  ] }), { texts: AT_TEXTS.concat(['in the Ġthe within', 'Ġthe inside']) });
  // Added tokens with a WordPiece model and a BertNormalizer (lowercase).
  add('added', 'a_wordpiece', wp(ref('wp'), {
    added_tokens: [
      special('[PAD]', 0), special('[UNK]', 1), special('[CLS]', 2), special('[SEP]', 3),
      Object.assign(special('[MASK]', 4), { lstrip: true }),
      ...added(Object.keys(wpVocab).length, [{ content: '<new>', special: false }, { content: 'Héllo', normalized: true }]),
    ],
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
  }), { texts: AT_TEXTS.concat(['[CLS] héllo HÉLLO hello <new> [MASK] [mask]']) });

  // Post-processors.
  const bert = (extra = {}) => wp(ref('wp'), Object.assign({
    added_tokens: [special('[PAD]', 0), special('[UNK]', 1), special('[CLS]', 2), special('[SEP]', 3), special('[MASK]', 4)],
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
  }, extra));
  const PP_TEXTS = SMALL.concat(['[CLS] already [SEP] there', '<s>x</s>']);
  add('post', 'pp_bert', bert({ post_processor: { type: 'BertProcessing', sep: ['[SEP]', 3], cls: ['[CLS]', 2] } }), { texts: PP_TEXTS, pairs: PAIRS });
  add('post', 'pp_template_bert', bert({ post_processor: {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
    pair: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } },
      { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '[SEP]', type_id: 1 } }],
    special_tokens: { '[CLS]': { id: '[CLS]', ids: [2], tokens: ['[CLS]'] }, '[SEP]': { id: '[SEP]', ids: [3], tokens: ['[SEP]'] } },
  } }), { texts: PP_TEXTS, pairs: PAIRS });
  add('post', 'pp_template_multi', bert({ post_processor: {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: 'bos', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: 'eos', type_id: 0 } }],
    pair: [{ Sequence: { id: 'B', type_id: 2 } }, { SpecialToken: { id: 'eos', type_id: 1 } }, { SpecialToken: { id: 'bos', type_id: 3 } },
      { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: 'eos', type_id: 1 } }],
    special_tokens: {
      bos: { id: 'bos', ids: [2, 4], tokens: ['[CLS]', '[MASK]'] },
      eos: { id: 'eos', ids: [3], tokens: ['[SEP]'] },
    },
  } }), { texts: PP_TEXTS, pairs: PAIRS });
  add('post', 'pp_template_a_only', bert({ post_processor: {
    type: 'TemplateProcessing',
    single: [{ Sequence: { id: 'A', type_id: 1 } }, { SpecialToken: { id: 'eos', type_id: 1 } }],
    pair: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: 'eos', type_id: 0 } }],
    special_tokens: { eos: { id: 'eos', ids: [3], tokens: ['[SEP]'] } },
  } }), { texts: SMALL.slice(0, 6), pairs: PAIRS });
  const rob = (trim, aps, pre_aps) => tj({
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: pre_aps, trim_offsets: true, use_regex: true },
    decoder: BL_DEC, model: ref('bl_bpe'),
    added_tokens: [special('<s>', blVocab), special('</s>', blVocab + 1), Object.assign(special('<mask>', blVocab + 2), { lstrip: true })],
    post_processor: { type: 'RobertaProcessing', sep: ['</s>', blVocab + 1], cls: ['<s>', blVocab], trim_offsets: trim, add_prefix_space: aps },
  });
  for (const trim of [true, false]) for (const aps of [true, false]) {
    add('post', `pp_roberta_trim${+trim}_aps${+aps}`, rob(trim, aps, aps),
      { texts: SMALL.concat(['x <mask> y', ' <mask>', 'x\u00a0<mask>\u3000y', '\u3000\u3000<mask>', '日本<mask>', '<mask>日本 <mask>é']), pairs: PAIRS });
  }
  add('post', 'pp_roberta_trim1_aps1_pre0', rob(true, true, false), { texts: SMALL, pairs: PAIRS.slice(0, 5) });
  for (const trim of [true, false]) for (const aps of [true, false]) {
    add('post', `pp_bytelevel_trim${+trim}_aps${+aps}`, tj({
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: aps, trim_offsets: true, use_regex: true },
      decoder: BL_DEC, model: ref('bl_bpe'),
      post_processor: { type: 'ByteLevel', add_prefix_space: aps, trim_offsets: trim, use_regex: true },
    }), { texts: trim && !aps ? CORE : SMALL, pairs: PAIRS.slice(0, 5) });
  }
  add('post', 'pp_sequence_llama3', tj({
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    decoder: BL_DEC, model: ref('bl_bpe'),
    added_tokens: [special('<|begin_of_text|>', blVocab), special('<|end_of_text|>', blVocab + 1)],
    post_processor: { type: 'Sequence', processors: [
      { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
      { type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
          { SpecialToken: { id: '<|begin_of_text|>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
        special_tokens: { '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [blVocab], tokens: ['<|begin_of_text|>'] } } }] },
  }), { texts: SMALL.concat(['<|begin_of_text|>hi<|end_of_text|>']), pairs: PAIRS });
  add('post', 'pp_sequence_bytelevel_trim', tj({
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    decoder: BL_DEC, model: ref('bl_bpe'),
    added_tokens: [special('<s>', blVocab), special('</s>', blVocab + 1)],
    post_processor: { type: 'Sequence', processors: [
      { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      { type: 'RobertaProcessing', sep: ['</s>', blVocab + 1], cls: ['<s>', blVocab], trim_offsets: false, add_prefix_space: true }] },
  }), { texts: SMALL, pairs: PAIRS });
  add('post', 'pp_none_pair', sp({ type: 'Whitespace' }), { texts: [], pairs: PAIRS });

  // Decoders (tokens of the encodings and arbitrary id lists).
  const dec = (decoder, model = ref('sp_bpe'), pre = META(), extra = {}) => tj(Object.assign({ pre_tokenizer: pre, decoder, model }, extra));
  add('decoder', 'd_llama', dec(LLAMA_DEC, ref('sp_bpe'), META(), { added_tokens: [special('<unk>', 0), special('<s>', 1), special('</s>', 2)] }), { randomDecodes: 30 });
  add('decoder', 'd_bytefallback', dec({ type: 'ByteFallback' }), { randomDecodes: 20 });
  add('decoder', 'd_bytefallback_fuse', dec({ type: 'Sequence', decoders: [{ type: 'ByteFallback' }, { type: 'Fuse' }] }), { randomDecodes: 20 });
  add('decoder', 'd_fuse', dec({ type: 'Fuse' }), { texts: SMALL });
  // (Strip panics in Hugging Face when start and stop overlap on a token
  // made only of content, or when stop exceeds such a token's length.)
  add('decoder', 'd_strip', dec({ type: 'Strip', content: '▁', start: 1, stop: 0 }), { texts: SMALL, randomDecodes: 10 });
  add('decoder', 'd_strip_left3', dec({ type: 'Strip', content: 'e', start: 3, stop: 0 }), { texts: SMALL, randomDecodes: 10 });
  add('decoder', 'd_strip_right', dec({ type: 'Strip', content: 'e', start: 0, stop: 1 }), { texts: SMALL, randomDecodes: 10 });
  add('decoder', 'd_replace_string', dec({ type: 'Replace', pattern: { String: '▁' }, content: '_ ' }), { texts: SMALL });
  add('decoder', 'd_replace_regex', dec({ type: 'Replace', pattern: { Regex: '[▁e]+' }, content: '' }), { texts: SMALL });
  add('decoder', 'd_replace_empty_match', dec({ type: 'Replace', pattern: { Regex: 'x*' }, content: '-' }), { texts: SMALL });
  for (const scheme of ['always', 'first', 'never']) {
    add('decoder', `d_metaspace_${scheme}`, dec(META(scheme, true), ref('sp_bpe'), META('always', true)), { texts: SMALL, randomDecodes: 10 });
  }
  add('decoder', 'd_bytelevel', tj({ pre_tokenizer: BYTE_LEVEL, decoder: BL_DEC, model: ref('bl_bpe'),
    added_tokens: [special('<|endoftext|>', blVocab), added(blVocab + 1, [{ content: 'ÿé' }])[0]] }), { texts: SMALL, randomDecodes: 40 });
  add('decoder', 'd_wordpiece_cleanup', wp(ref('wp'), { decoder: { type: 'WordPiece', prefix: '##', cleanup: true } }), { randomDecodes: 10 });
  add('decoder', 'd_wordpiece_nocleanup', wp(ref('wp'), { decoder: { type: 'WordPiece', prefix: '##', cleanup: false } }), { randomDecodes: 10 });
  add('decoder', 'd_bpe_suffix', tj({ pre_tokenizer: { type: 'Whitespace' }, decoder: { type: 'BPEDecoder', suffix: '</w>' }, model: ref('bpe_fix') }), { texts: SMALL, randomDecodes: 10 });
  add('decoder', 'd_sequence', dec({ type: 'Sequence', decoders: [
    { type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Strip', content: ' ', start: 1, stop: 0 },
    { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }] }), { texts: SMALL, randomDecodes: 10 });
  // CTC on a character vocabulary.
  const ctcVocab = { '<pad>': 0, '|': 1, '<unk>': 2 };
  for (const c of "abcdefghijklmnopqrstuvwxyz'.,?!") ctcVocab[c] = Object.keys(ctcVocab).length;
  ctcVocab["n't"] = Object.keys(ctcVocab).length;
  for (const cleanup of [true, false]) {
    add('decoder', `d_ctc_cleanup${+cleanup}`, tj({
      normalizer: { type: 'Sequence', normalizers: [{ type: 'Lowercase' }, { type: 'Replace', pattern: { String: ' ' }, content: '|' }] },
      pre_tokenizer: { type: 'Split', pattern: { String: '' }, behavior: 'Isolated', invert: false },
      decoder: { type: 'CTC', pad_token: '<pad>', word_delimiter_token: '|', cleanup },
      model: { type: 'WordPiece', unk_token: '<unk>', continuing_subword_prefix: '', max_input_chars_per_word: 100, vocab: ctcVocab },
    }), { texts: ['hello world', "I don't know . is it ?", 'aabbcc', ''], decodes: [
      [0, 10, 10, 0, 7, 7, 14, 0, 14, 17, 1, 1, 25, 17, 20, 14, 6, 0],
      [11, 1, 6, 17, 1, 16, 17, 26, 1, 35, 33, 1, 1, 1, 32, 33],
      [5, 5, 5, 0, 0, 5, 1, 0, 1, 2, 2, 99],
      [], [0], [1], [0, 0, 1, 1],
    ] });
  }

  // Truncation and padding.
  const trunc = (strategy, direction, max) => ({ max_length: max, strategy, direction, stride: 0 });
  for (const strategy of ['LongestFirst', 'OnlyFirst', 'OnlySecond']) for (const direction of ['Right', 'Left']) {
    add('truncation', `t_${strategy}_${direction}`, bert({
      post_processor: { type: 'BertProcessing', sep: ['[SEP]', 3], cls: ['[CLS]', 2] },
      truncation: trunc(strategy, direction, 9),
    }), { texts: SMALL.slice(0, 12), pairs: PAIRS });
  }
  add('truncation', 't_LongestFirst_noprocessor', tj({ pre_tokenizer: { type: 'Whitespace' }, model: ref('sp_bpe'), truncation: trunc('LongestFirst', 'Right', 5) }),
    { texts: SMALL.slice(0, 12), pairs: PAIRS.concat([['a b c d e f g', 'h i j k l m'], ['a b c d e f g h', 'i j k l m n'], ['a b c', 'd e f g h i j k l']]) });
  add('truncation', 't_max0', tj({ pre_tokenizer: { type: 'Whitespace' }, model: ref('sp_bpe'), truncation: trunc('LongestFirst', 'Right', 0) }), { texts: SMALL.slice(0, 4), pairs: PAIRS.slice(0, 3) });
  const pad = (strategy, direction, mult) => ({ strategy, direction, pad_to_multiple_of: mult, pad_id: 0, pad_type_id: 7, pad_token: '[PAD]' });
  for (const [pn, p] of [
    ['batch_right', pad('BatchLongest', 'Right', null)], ['batch_left', pad('BatchLongest', 'Left', null)],
    ['fixed16', pad({ Fixed: 16 }, 'Right', null)], ['fixed4_left', pad({ Fixed: 4 }, 'Left', null)],
    ['batch_mult8', pad('BatchLongest', 'Right', 8)], ['fixed10_mult4_left', pad({ Fixed: 10 }, 'Left', 4)],
  ]) {
    add('padding', `pad_${pn}`, bert({
      post_processor: { type: 'BertProcessing', sep: ['[SEP]', 3], cls: ['[CLS]', 2] }, padding: p,
    }), { texts: BATCH, pairs: PAIRS.slice(0, 4), batches: [BATCH, BATCH.slice(0, 2), ['x']] });
  }
  add('padding', 'pad_trunc', bert({
    post_processor: { type: 'BertProcessing', sep: ['[SEP]', 3], cls: ['[CLS]', 2] },
    padding: pad('BatchLongest', 'Left', 4), truncation: trunc('LongestFirst', 'Left', 6),
  }), { texts: BATCH, pairs: PAIRS.slice(0, 6), batches: [BATCH] });
  return specs;
}

// ------------------------------------------------------------- running ---

function resolve(json, models) {
  const out = Object.assign({}, json);
  if (out.model && out.model.$ref) {
    const { $ref, ...over } = out.model;
    out.model = Object.assign({}, models[$ref], over);
  }
  return out;
}

function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function encodingRecord(e) {
  return {
    ids: e.getIds(), tokens: e.getTokens(), offsets: e.getOffsets(), type_ids: e.getTypeIds(),
    special_tokens_mask: e.getSpecialTokensMask(), attention_mask: e.getAttentionMask(),
  };
}

async function runSpec(spec, models) {
  const full = resolve(spec.json, models);
  const tok = Tokenizer.fromString(JSON.stringify(full));
  for (const a of full.added_tokens || []) {
    if (tok.tokenToId(a.content) !== a.id) throw new Error(`${spec.name}: added token ${a.content} has id ${tok.tokenToId(a.content)}, file says ${a.id}`);
  }
  const out = { name: spec.name, group: spec.group, json: spec.json, cases: [], batches: [], decodes: [] };
  const decodeBoth = async (ids) => {
    const r = {};
    for (const [k, skip] of [['decoded', false], ['decoded_skip', true]]) {
      try {
        r[k] = await tok.decode(ids, skip);
      } catch (err) {
        r[k + '_error'] = String(err.message || err);
      }
    }
    return r;
  };
  const pre = tok.getPreTokenizer();
  const norm = tok.getNormalizer();
  const one = async (a, b) => {
    if (process.env.GEN_DEBUG) console.error(spec.name, JSON.stringify(a), JSON.stringify(b));
    for (const special of [false, true]) {
      const c = { t: ti(a), special };
      if (b !== undefined) c.p = ti(b);
      if (b === undefined && !special && spec.group === 'pre_tokenizer' && pre) {
        c.pre = pre.preTokenizeString(a).map(([piece, [s, e]]) => [piece, s, e]);
      }
      if (b === undefined && !special && spec.group === 'normalizer' && norm) c.normalized = norm.normalizeString(a);
      try {
        const e = await tok.encode(a, b === undefined ? null : b, { addSpecialTokens: special });
        Object.assign(c, encodingRecord(e), await decodeBoth(e.getIds()));
      } catch (err) {
        c.error = String(err.message || err);
      }
      out.cases.push(c);
    }
  };
  for (const s of spec.texts || CORE) await one(s);
  for (const [a, b] of spec.pairs || []) await one(a, b);
  for (const batch of spec.batches || []) {
    for (const special of [false, true]) {
      const encs = await tok.encodeBatch(batch, { addSpecialTokens: special });
      out.batches.push({ ts: batch.map(ti), special, encodings: encs.map(encodingRecord) });
    }
  }
  const lists = (spec.decodes || []).slice();
  if (spec.randomDecodes) {
    const r = rng(spec.name.length * 7919 + spec.randomDecodes);
    const size = tok.getVocabSize(true);
    // Byte-like ids: the byte tokens, for the invalid UTF-8 paths.
    const byteIDs = [];
    for (let b = 0x80; b < 0x100; b++) {
      const id = tok.tokenToId('<0x' + b.toString(16).toUpperCase() + '>');
      if (id !== null && id !== undefined) byteIDs.push(id);
    }
    const alpha = tk.byteLevelAlphabet().sort(); // (its order varies between runs)
    const blBytes = [];
    for (const c of alpha) {
      const id = tok.tokenToId(c);
      if (id !== null && id !== undefined && c.codePointAt(0) >= 0x80) blBytes.push(id);
    }
    const pool = byteIDs.length ? byteIDs : blBytes;
    for (let k = 0; k < spec.randomDecodes; k++) {
      const n = 1 + Math.floor(r() * 10);
      const ids = [];
      for (let i = 0; i < n; i++) {
        const x = r();
        if (x < 0.5 && pool.length) ids.push(pool[Math.floor(r() * pool.length)]);
        else if (x < 0.95) ids.push(Math.floor(r() * size));
        else ids.push(size + Math.floor(r() * 5));
      }
      lists.push(ids);
    }
  }
  for (const ids of lists) out.decodes.push(Object.assign({ ids }, await decodeBoth(ids)));
  return out;
}

async function main() {
  if (process.argv[2] === 'models') {
    await trainModels(process.argv[3]);
    return;
  }
  const models = JSON.parse(zlib.gunzipSync(fs.readFileSync(MODELS)).toString('utf8'));
  const specs = tokenizerSpecs(models);
  const tokenizers = [];
  for (const spec of specs) tokenizers.push(await runSpec(spec, models));
  const golden = { generator: 'gen.js', tokenizers_version: require('tokenizers/package.json').version, texts, tokenizers };
  fs.writeFileSync(GOLDEN, zlib.gzipSync(JSON.stringify(golden), { level: 9 }));
  let cases = 0;
  for (const t of tokenizers) cases += t.cases.length + t.batches.length + t.decodes.length;
  console.log(`wrote ${GOLDEN}: ${tokenizers.length} tokenizers, ${cases} cases, ${texts.length} texts`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
