import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bodyFormatOf } from '../../src/decode/body-format';

describe('bodyFormatOf', () => {
  it('maps each JSON media type, and a missing or empty header, to json', () => {
    for (const contentType of [undefined, '', '   ', 'application/json', 'text/json', 'application/vnd.api+json', 'application/cloudevents+json']) {
      assert.equal(bodyFormatOf(contentType), 'json', String(contentType));
    }
  });

  it('maps each NDJSON media type to ndjson', () => {
    for (const contentType of ['application/x-ndjson', 'application/ndjson', 'application/jsonl', 'application/x-jsonlines']) {
      assert.equal(bodyFormatOf(contentType), 'ndjson', contentType);
    }
  });

  it('maps each msgpack media type to msgpack', () => {
    for (const contentType of ['application/msgpack', 'application/x-msgpack', 'application/vnd.msgpack']) {
      assert.equal(bodyFormatOf(contentType), 'msgpack', contentType);
    }
  });

  it('ignores case, surrounding space and parameters other than charset', () => {
    assert.equal(bodyFormatOf('Application/JSON'), 'json');
    assert.equal(bodyFormatOf('  application/json  ; foo=bar'), 'json');
    assert.equal(bodyFormatOf('APPLICATION/X-NDJSON;boundary=x'), 'ndjson');
    assert.equal(bodyFormatOf('application/msgpack; charset=latin1'), 'msgpack', 'charset means nothing for a binary format');
  });

  it('accepts a UTF-8 charset however it is written', () => {
    for (const contentType of ['application/json; charset=utf-8', 'application/json;charset=UTF-8', 'application/json; charset="utf-8"', 'application/x-ndjson; charset=utf8']) {
      assert.notEqual(bodyFormatOf(contentType), null, contentType);
    }
  });

  it('refuses JSON and NDJSON declared in another charset', () => {
    for (const contentType of ['application/json; charset=utf-16', 'application/json; charset=iso-8859-1', 'application/x-ndjson; charset="latin1"', 'application/json; charset=']) {
      assert.equal(bodyFormatOf(contentType), null, contentType);
    }
  });

  it('refuses every other media type', () => {
    const refused = [
      'application/x-www-form-urlencoded', // what `curl -d` sends without -H
      'multipart/form-data; boundary=x',
      'text/plain',
      'application/xml',
      'application/octet-stream',
      '*/*',
      'application/*',
      'application/+json',
      'application/a/b+json',
      'text/vnd.x+json',
      'json',
      '; charset=utf-8',
      'application/json2',
      'application/ json',
    ];
    for (const contentType of refused) assert.equal(bodyFormatOf(contentType), null, contentType);
  });
});
