#!/usr/bin/env python3
"""Writes features.json: small templates and their output under real Jinja2.

The environment is the one transformers' apply_chat_template compiles chat
templates in (transformers/utils/chat_template_utils.py, _compile_jinja_template):
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
extensions=[AssistantTracker, loopcontrols]) with its tojson filter and the
raise_exception and strftime_now globals; render(messages=..., tools=...,
documents=..., add_generation_prompt=..., **special_tokens, **kwargs).

Usage: cd data/chat/testdata && python3 jinja_oracle.py  (rewrites features.json)
Made with Jinja2 3.1.6 / Python 3.11.
"""

import json
from datetime import datetime

import jinja2
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


class AssistantTracker(Extension):
    """transformers' {% generation %} tag; renders its body when not tracking."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return datetime.now().strftime(format)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[AssistantTracker, loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = strftime_now


def template_source(case):
    if "template_file" in case:
        with open(case["template_file"] + ".tokenizer_config.json") as f:
            return json.load(f)["chat_template"]
    return case["template"]


CONV = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "  Hello\n"},
    {"role": "assistant", "content": "<think>\nplan\n</think>\n\nHi there"},
    {"role": "user", "content": "Bye"},
]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city, \"now\" — été ☀",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City <name> & country"},
                "days": {"type": "integer", "minimum": 1, "maximum": 7.5, "default": None},
            },
            "required": ["city"],
        },
    },
}

TOOL_CONV = [
    {"role": "system", "content": "You help."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}},
        {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Lyon\"}"}},
    ]},
    {"role": "tool", "content": "{\"temp\": 21}", "tool_call_id": "c1", "name": "get_weather"},
    {"role": "tool", "content": "sunny"},
    {"role": "assistant", "content": "It is 21°C.", "reasoning_content": "\nThe tool said 21.\n"},
]

DATA = {"z": 1, "a": [1, 2.5, None, True, "x"], "m": {"k": "v", "é": "ü"}, "s": "str"}

CASES = [
    # Python string methods.
    {"name": "strip", "template": "[{{ '  \\n hi \\t'.strip() }}][{{ 'xxhixx'.strip('x') }}][{{ '\\n\\nhi\\n'.lstrip('\\n') }}][{{ 'hi  \\n'.rstrip() }}][{{ 'abcba'.strip('ab') }}][{{ ' hi '.lstrip() }}][{{ '\u3000hi\u00a0'.strip() }}][{{ 'hi'.strip(none) }}]"},
    {"name": "split", "template": "{{ 'a  b\\tc\\n'.split()|tojson }} {{ 'a,b,,c'.split(',')|tojson }} {{ 'a,b,c'.split(',', 1)|tojson }} {{ 'a,b,c'.rsplit(',', 1)|tojson }} {{ '  a b  c '.split(none, 1)|tojson }} {{ '  a b  c '.rsplit(none, 1)|tojson }} {{ ''.split()|tojson }} {{ ''.split(',')|tojson }} {{ 'x</think>y</think>z'.split('</think>')[-1] }} {{ 'a b'.split(maxsplit=0)|tojson }}"},
    {"name": "affixes", "template": "{{ 'hello'.startswith('he') }} {{ 'hello'.startswith(('x', 'hel')) }} {{ 'hello'.endswith('lo') }} {{ 'hello'.startswith('l', 2) }} {{ 'hello'.endswith('ell', 0, 4) }} {{ 'héllo'.startswith('llo', 2) }} {{ 'hello'.endswith(('a', 'b')) }}"},
    {"name": "case", "template": "{{ 'hello wORLD it\\'s ß-x 3rd'.upper() }}|{{ 'HeLLo ÀÉ'.lower() }}|{{ 'hello wORLD it\\'s 3rd-x'.title() }}|{{ 'hELLO World'.capitalize() }}|{{ 'hello wORLD it\\'s (x) 3rd-y'|title }}|{{ 'hELLO World'|capitalize }}|{{ 'abc'|upper }}|{{ 'ABC'|lower }}|{{ 'Hi There'.swapcase() }}"},
    {"name": "replace", "template": "{{ 'aaa'.replace('a', 'b') }} {{ 'aaa'.replace('a', 'b', 2) }} {{ 'ab'.replace('', '-') }} {{ 'a\\nb'.replace('\\n', '\\\\n') }} {{ 'aaa'|replace('a', 'c') }} {{ 'aaa'|replace('a', 'c', 1) }}"},
    {"name": "format", "template": "{{ '{} and {}'.format('a', 'b') }} {{ '{name}!'.format(name='x') }} {{ '{0}{1}{0}'.format('a', 'b') }} {{ '%s-%d'|format('a', 3) }}"},
    {"name": "join_find_count", "template": "{{ ', '.join(['a', 'b']) }} {{ ['a', 'b']|join('-') }} {{ ''.join('abc') }} {{ 'hello'.find('l') }} {{ 'héllo'.find('l') }} {{ 'hello'.rfind('l') }} {{ 'hello'.find('z') }} {{ 'hello'.count('l') }} {{ 'hello'.removeprefix('he') }} {{ 'hello'.removesuffix('lo') }} {{ '  '.isspace() }} {{ '12'.isdigit() }}"},
    # Dicts.
    {"name": "dict_methods", "template": "{% for k, v in d.items() %}{{ k }}={{ v|tojson }};{% endfor %} {{ d.get('z') }} {{ d.get('nope', 'dflt') }} {{ d.get('nope') is none }} {{ d.keys()|list|tojson }} {{ d.values()|list|length }} {{ d|length }} {{ 'a' in d }} {{ 'q' in d }} {{ d.m.k }} {{ d['m']['é'] }} {{ d.s }}", "vars": {"d": DATA}},
    {"name": "items_filter", "template": "{% for k, v in d|items %}{{ k }}:{{ v|tojson }},{% endfor %}{% for k, v in d|dictsort %}{{ k }},{% endfor %}", "vars": {"d": DATA}},
    {"name": "dict_literal", "template": "{% set x = {'b': 1, 'a': [1, 2.5, none, true]} %}{{ x|tojson }} {{ x.b }} {{ x['a'][1] }} {{ x|length }} {% for k in x %}{{ k }}{% endfor %}"},
    {"name": "namespace", "messages": CONV, "template": "{% set ns = namespace(found=false, n=0, last='') %}{% for m in messages %}{% if m.role == 'user' %}{% set ns.found = true %}{% set ns.n = ns.n + 1 %}{% set ns.last = m.content|trim %}{% endif %}{% endfor %}{{ ns.found }} {{ ns.n }} {{ ns.last }} {{ ns is mapping }}"},
    # Sequences.
    {"name": "slices", "messages": CONV, "template": "{% for m in messages[1:] %}{{ m.role }},{% endfor %}|{% for m in messages[::-1] %}{{ m.role }},{% endfor %}|{% for m in messages[:-1] %}{{ m.role }},{% endfor %}|{% for m in messages[1:3] %}{{ m.role }},{% endfor %}|{{ 'hello'[1:3] }} {{ 'hello'[::-1] }} {{ 'héllo'[-3:] }} {{ [1, 2, 3, 4, 5][::2]|tojson }} {{ [1, 2, 3][5:]|tojson }} {{ messages[-1].role }} {{ messages[0]['content'] }} {{ 'hello'[1] }}"},
    {"name": "loop_vars", "messages": CONV, "template": "{% for m in messages %}{{ loop.index0 }}{{ loop.index }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex0 }}{{ loop.revindex }} {% endfor %}"},
    {"name": "loop_prev_next", "messages": CONV, "template": "{% for m in messages %}{% if not loop.first %}{{ loop.previtem.role }}{% endif %}>{{ m.role }}>{% if not loop.last %}{{ loop.nextitem.role }}{% endif %} {% endfor %}"},
    {"name": "loop_controls", "messages": CONV, "template": "{% for m in messages %}{% if loop.index0 == 1 %}{% continue %}{% endif %}{% if loop.index0 == 3 %}{% break %}{% endif %}{{ m.role }};{% endfor %}"},
    {"name": "loop_else_filter", "messages": CONV, "template": "{% for m in messages if m.role == 'user' %}{{ m.content|trim }}{{ loop.index }},{% endfor %}{% for x in [] %}x{% else %}empty{% endfor %}"},
    {"name": "scoping", "messages": CONV, "template": "{% set x = 'outer' %}{% for m in messages %}{% set x = m.role %}{% endfor %}{{ x }} {% if true %}{% set y = 'if' %}{% endif %}{{ y }}"},
    {"name": "select_map", "messages": CONV, "template": "{{ messages|selectattr('role', 'equalto', 'user')|list|length }} {{ (messages|selectattr('role', 'equalto', 'user')|list|last).content }} {{ messages|map(attribute='role')|join(',') }} {{ messages|rejectattr('role', 'equalto', 'system')|map(attribute='role')|list|tojson }} {{ (messages|first).role }} {{ (messages|last).role }}"},
    # Tests and operators.
    {"name": "tests", "messages": CONV, "template": "{{ 'a' is string }} {{ 1 is string }} {{ d is mapping }} {{ d.a is mapping }} {{ 'x' is mapping }} {{ d.a is sequence }} {{ nothing is defined }} {{ nothing is undefined }} {{ d is defined }} {{ d.zz is defined }} {{ d.a[2] is none }} {{ d.s is not none }} {{ 1 is number }} {{ 2.5 is number }} {{ d.a is iterable }} {{ messages[0].tool_calls is defined }} {{ messages[0].content is string }} {{ true is boolean }} {{ 3 is odd }} {{ 4 is even }} {{ 4 is divisibleby 2 }} {{ 'ab' is lower }}", "vars": {"d": DATA}},
    {"name": "none_valued_var", "template": "{{ n is none }} {{ n is not none }} {{ tools is none }} {{ missing is defined }} {{ n == none }} {{ d.get('zz') is none }}", "vars": {"n": None, "d": DATA}},
    {"name": "in_operator", "messages": CONV, "template": "{{ 'b' in 'abc' }} {{ 'x' in ['x', 'y'] }} {{ 'z' in ['x', 'y'] }} {{ 'x' not in ['x'] }} {{ '</think>' in messages[2].content }} {{ 1 in [1, 2] }} {{ 'role' in messages[0] }}"},
    {"name": "length_trim", "messages": CONV, "template": "{{ messages|length }} {{ 'héllo'|length }} {{ d|length }} {{ []|length }} [{{ messages[1].content|trim }}] [{{ '  x \\n'|trim }}] [{{ 'xxhixx'|trim('x') }}] {{ messages|count }}", "vars": {"d": DATA}},
    {"name": "arithmetic", "template": "{{ 1 + 2 }} {{ 7 // 2 }} {{ 7 % 3 }} {{ 7 / 2 }} {{ 4 / 2 }} {{ 2 ** 0.5 }} {{ 'a' ~ 1 ~ true }} {{ 'ab' * 2 }} {{ 1 < 2 and 'x' or 'y' }} {{ 'a' if 0 else 'b' }} {{ [1, 2] + [3] }} {{ 2.5 }} {{ 1e3 }} {{ (1, 2)|list }} {{ -3|abs }} {{ 10|string + '!' }} {{ '42'|int + 1 }}"},
    {"name": "truthiness", "vars": {"e": {}, "l": [], "f": {"x": 0}}, "template": "{{ [] and 'y' or 'n' }} {{ e and 'y' or 'n' }} {{ l and 'y' or 'n' }} {{ f and 'y' or 'n' }} {{ e|length }} {{ e|tojson }} {{ e is mapping }} {{ '' and 'y' or 'n' }} {{ 0 and 'y' or 'n' }} {{ none and 'y' or 'n' }} {{ ['a'] and 'y' or 'n' }} {{ not [] }} {{ [] == [] }} {{ 'a' == 'a' }} {{ 1 == 1.0 }} {{ 'A' < 'a' }}"},
    {"name": "printing", "template": "{{ true }} {{ false }} {{ ['a', 1] }} {{ d.m }} {{ 0.1 }} {{ 100.0 }}", "vars": {"d": DATA}},
    {"name": "range_default", "template": "{% for i in range(3) %}{{ i }}{% endfor %} {% for i in range(1, 7, 2) %}{{ i }}{% endfor %} {{ missing|default('dflt') }} {{ 'x'|default('dflt') }} {{ ''|default('dflt', true) }} {{ [3, 1, 2]|sort|list|tojson }} {{ [1, 2, 3]|reverse|list|tojson }} {{ [1, 2, 3]|sum }} {{ [1, 2, 3]|max }}"},
    {"name": "macro_set_block", "messages": CONV, "template": "{% macro show(m, sep=': ') %}{{ m.role }}{{ sep }}{{ m.content|trim }}{% endmacro %}{% set intro %}Roles{% for m in messages %} {{ m.role }}{% endfor %}{% endset %}{{ intro }}\n{{ show(messages[1]) }}|{{ show(messages[3], sep='=') }}"},
    {"name": "generation_block", "messages": CONV, "template": "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}{% else %}{{ m.role }}{% endif %}|{% endfor %}"},
    # tojson as transformers defines it.
    {"name": "tojson_default", "template": "{{ d|tojson }}", "vars": {"d": DATA}},
    {"name": "tojson_options", "template": "{{ d|tojson(indent=2) }}\n{{ d|tojson(indent=0) }}\n{{ d|tojson(indent='\\t') }}\n{{ d|tojson(separators=(',', ':')) }}\n{{ d|tojson(sort_keys=true) }}\n{{ d|tojson(ensure_ascii=true) }}\n{{ d|tojson(indent=2, separators=(', ', ' = ')) }}\n{{ {'e': [], 'f': {}}|tojson(indent=2) }}", "vars": {"d": DATA}},
    {"name": "tojson_scalars", "template": "{{ 'q\"b\\\\s\\n\\t\\r\\x01\\x7f<>&\\'é😀'|tojson }} {{ 'é😀\\x7f'|tojson(ensure_ascii=true) }} {{ [1.0, 0.1, 1e20, 1e16, 1e15, 1.5e-7, 0.0001, 0.00001, -2.0, 123456789.125, 3, -4, true, false, none]|tojson }} {{ 'x'|tojson }} {{ 12|tojson }} {{ none|tojson }} {{ nums|tojson }}", "vars": {"nums": [1, 2.0, 1e100, 9007199254740993, -0.0]}},
    {"name": "tools_loop", "tools": [WEATHER_TOOL], "template": "{% for tool in tools %}{{ tool|tojson }}\n{{ tool.function.name }} {{ tool['function']['parameters']['properties']|length }}{% for name, p in tool.function.parameters.properties.items() %} {{ name }}:{{ p.type }}{% endfor %}{% endfor %}"},
    # Whitespace control with trim_blocks and lstrip_blocks.
    {"name": "whitespace", "messages": CONV, "template": "{% for m in messages %}\n    {% if m.role == 'user' %}\nU: {{ m.content }}\n    {% elif m.role == 'assistant' %}\n  A: {{ m.content }}   {# comment #}\n    {% endif %}\n{% endfor %}\ndone   {% if true %}x{% endif %} y\n  {%+ if true %}kept{% endif %}\n{#- c -#}\n  z  {{- ' w ' -}}  v\n{% raw %}{{ raw }}{% endraw %}\n"},
    {"name": "whitespace_tricky", "template": "a\n  {% set x = {'k': {'v': '%}'}} %}\n  {{ x.k.v }}\n  {# c #}\n  {%- if true -%}\n   t  \n  {%+ endif %}\n    {% raw %}\n  {{ r }}\n    {% endraw %}\nend {{ '{{' }} {# {% #} {{ \"}}\" }}\n\t{% if true +%}\nkeep\n{% endif %}"},
    {"name": "whitespace_trailing", "template": "a\n{% if true %}\nb\n{% endif %}\n\n"},
    {"name": "whitespace_tabs", "template": "x\n\t {% if true %}\n\ty\n \t{% endif %}\t\nz {{ 1 }}\n {{ 2 }}\n"},
    # Errors.
    {"name": "raise", "messages": CONV, "template": "{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}ok"},
    # Real templates with tools, tool calls and reasoning.
    {"name": "qwen3_tools", "template_file": "qwen3", "messages": TOOL_CONV, "tools": [WEATHER_TOOL], "add_generation_prompt": True},
    {"name": "qwen3_reasoning", "template_file": "qwen3", "messages": CONV, "add_generation_prompt": True, "vars": {"enable_thinking": False}},
    {"name": "qwen3_last_reasoning", "template_file": "qwen3", "messages": CONV[:3]},
    {"name": "qwen3_tool_turns", "template_file": "qwen3", "messages": TOOL_CONV},
    {"name": "llama3_strip", "template_file": "llama3", "messages": CONV, "vars": {"bos_token": "<|begin_of_text|>"}},
]

# Where gonja differs from Jinja2 and chat.Template cannot change it (see
# TestKnownDifferencesFromJinja2); "want" is Jinja2's output.
DIFFERENCES = [
    {"name": "none_is_undefined", "template": "{{ n is defined }} {{ tools is defined }} [{{ n }}] {{ d.a }}", "vars": {"n": None, "d": DATA}},
    {"name": "none_literal", "template": "{% set x = none %}{{ x is defined }}"},
    {"name": "string_index_bytes", "template": "{{ 'héllo'[1] }}"},
    {"name": "integer_power_floor", "template": "{{ 2 ** 3 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 // -2.0 }}"},
    {"name": "empty_dict_literal", "template": "{{ {} and 'y' or 'n' }}"},
    {"name": "big_int", "template": "{{ n|tojson }}", "vars": {"n": 12345678901234567890}},
    {"name": "dict_kwargs_order", "template": "{{ dict(b=1, a=2)|tojson }}"},
]

STRFTIME = ["%d %b %Y", "%Y-%m-%d %H:%M:%S", "%-d %B %y", "%a %A %w %u %j %U %W %V %G", "%I:%M %p %f %%", "%c|%x|%X", "%e|%z|%Z|%D|%F|%T|%R|%r", "%h %C %g %k %l %P", "%-H:%-M %Q 100%", "plain"]


def render_all(source_cases):
    cases = []
    for case in source_cases:
        case = dict(case)
        kwargs = dict(case.get("vars", {}))
        try:
            case["want"] = env.from_string(template_source(case)).render(
                messages=case.get("messages", []),
                tools=case.get("tools"),
                documents=None,
                add_generation_prompt=case.get("add_generation_prompt", False),
                **kwargs,
            )
        except Exception as e:  # the Go side checks that it fails too
            case["error"] = f"{type(e).__name__}: {e}"
        cases.append(case)
    return cases


def main():
    fixed = datetime(2024, 7, 6, 9, 5, 3, 123456)
    doc = {
        "generator": "jinja_oracle.py, Jinja2 " + jinja2.__version__,
        "cases": render_all(CASES),
        "differences": render_all(DIFFERENCES),
        "strftime": {"time": fixed.isoformat(), "want": {f: fixed.strftime(f) for f in STRFTIME}},
    }
    with open("features.json", "w") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
