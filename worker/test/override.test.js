// Method overrides (_method) in a capability call's query and form body:
// every spelling a server might read as _method is held to the
// capability's methods; other parameters pass.
import { test } from "node:test";
import assert from "node:assert/strict";
import { queryOverride, formOverride, isForm, isOverride } from "../src/override.js";

const methods = ["GET", "POST"];
const enc = (s) => new TextEncoder().encode(s);

// Names a server reads as _method: Rack and Symfony as spelled, PHP also
// with " ", "." or "[" for "_", as an array, escaped once or twice, %u,
// overlong or fullwidth, in any case.
const overrideNames = ["_method", "_METHOD", "_Method", "%5Fmethod", "%5fMETHOD", "%255Fmethod", "_m%65thod", "%u005fmethod", "%C1%9Fmethod",
  "%EF%BC%BFmethod", "＿ｍｅｔｈｏｄ", ".method", "+_method", "%20_method", "_method[]", "_method[0]", "_method%00x", "_method+", "[method"];
// Values past GET and POST, spelled as loosely.
const overrideValues = ["DELETE", "delete", "PUT", "%44ELETE", "%2544ELETE", "DELETE%20", "Patch", "ｄｅｌｅｔｅ", ""];

test("a query's _method in any spelling is refused unless it names an allowed method", () => {
  for (const name of overrideNames) {
    assert.ok(isOverride(name), `${name} reads as _method`);
    for (const value of overrideValues) {
      for (const q of [`?${name}=${value}`, `?a=1&${name}=${value}`, `?a=1;${name}=${value}&b=2`]) {
        assert.match(queryOverride(q, methods) ?? "", /_method .* is not an allowed method/, q);
      }
    }
    assert.ok(queryOverride(`?${name}`, methods), `${name} without a value`);
    for (const value of ["GET", "get", "post", "%50OST", " GET "]) assert.equal(queryOverride(`?${name}=${value}`, methods), null, `${name}=${value}`);
  }
  for (const q of ["", "?", "?method=DELETE", "?x_method=DELETE", "?_methods=DELETE", "?_method_x=DELETE", "?q=_method%3DDELETE", "?a=b"]) {
    assert.equal(queryOverride(q, methods), null, q);
  }
});

test("which bodies a server may read as a form", () => {
  for (const t of [null, "", "application/x-www-form-urlencoded", "APPLICATION/X-WWW-FORM-URLENCODED; charset=utf-8", "multipart/form-data; boundary=x", " multipart/mixed"]) {
    assert.ok(isForm(t), `${t}`);
  }
  for (const t of ["application/json", "text/plain", "application/octet-stream"]) assert.ok(!isForm(t), t);
});

test("an urlencoded body's _method is held to the methods", () => {
  const type = "application/x-www-form-urlencoded";
  for (const name of overrideNames) {
    for (const value of ["DELETE", "put", "%44ELETE"]) {
      for (const body of [`${name}=${value}`, `a=1&${name}=${value}`, `a=1;${name}=${value}`]) {
        for (const t of [type, null, "Application/X-WWW-Form-Urlencoded; charset=UTF-8"]) {
          assert.ok(formOverride(t, enc(body), methods), `${t}: ${body}`);
        }
      }
    }
    assert.equal(formOverride(type, enc(`${name}=POST&a=1`), methods), null);
  }
  assert.equal(formOverride(type, enc("qty=2&method=DELETE"), methods), null);
  for (const cs of ["utf-16le", "UTF-16", "utf-7", "x-user-defined"]) {
    assert.match(formOverride(`${type}; charset=${cs}`, enc("a=1"), methods) ?? "", /cannot be checked/, cs);
  }
});

// A multipart part named _method in the ways parsers read a name.
const parts = [
  (b, v) => `--${b}\r\nContent-Disposition: form-data; name="_method"\r\n\r\n${v}\r\n--${b}--\r\n`,
  (b, v) => `--${b}\r\ncontent-disposition: form-data; name=_method\r\n\r\n${v}\r\n--${b}--`,
  (b, v) => `preamble\r\n--${b}\r\nContent-Disposition: form-data; NAME = "_METHOD"\r\n\r\n${v}\r\n--${b}--`,
  (b, v) => `--${b}\nContent-Disposition: form-data; name="_method"\n\n${v}\n--${b}--\n`,
  (b, v) => `--${b}\r\nContent-Disposition: form-data; name*=UTF-8''%5Fmethod\r\n\r\n${v}\r\n--${b}--`,
  (b, v) => `--${b}\r\nContent-Disposition: form-data; name="=?utf-8?B?X21ldGhvZA==?="\r\n\r\n${v}\r\n--${b}--`,
  (b, v) => `--${b}\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--${b}\r\nContent-Disposition: form-data; name="_method"; filename="m.txt"\r\nContent-Type: text/plain\r\n\r\n${v}\r\n--${b}--`,
  (b, v) => `--${b}\r\nContent-Disposition: form-data;\r\n name="\\_method"\r\n\r\n${v}\r\n--${b}--`,
  (b, v) => `--${b}\r\nContent-Disposition: form-data; name=".method"\r\n\r\n${v}\r\n--${b}--`,
];

test("a multipart body's _method is held to the methods", () => {
  for (const [type, b] of [["multipart/form-data; boundary=XyZ", "XyZ"], ['multipart/form-data; boundary="a b:c"', "a b:c"], ["Multipart/Form-Data;BOUNDARY=q", "q"]]) {
    parts.forEach((part, i) => {
      for (const v of ["DELETE", "put", " PATCH"]) assert.ok(formOverride(type, enc(part(b, v)), methods), `${type} part ${i}: ${v}`);
      assert.equal(formOverride(type, enc(part(b, "POST")), methods), null, `${type} part ${i}: POST`);
    });
  }
  const plain = `--q\r\nContent-Disposition: form-data; name="payment_method"\r\n\r\ncard\r\n--q\r\nContent-Disposition: form-data; name="file"; filename="_method"\r\n\r\nDELETE\r\n--q--`;
  assert.equal(formOverride("multipart/form-data; boundary=q", enc(plain), methods), null);
  for (const type of ["multipart/form-data", "multipart/form-data; boundary=", "multipart/form-data; boundary=a; boundary=b", "multipart/form-data; boundary=\"x\r\n\""]) {
    assert.match(formOverride(type, enc(parts[0]("a", "DELETE")), methods) ?? "", /cannot be checked/, type);
  }
});
