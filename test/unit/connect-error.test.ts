import { connectRefusal, notConnected, vhostOf } from '../../src/amqp/connect-error';
import { BrokerError, BrokerRefusedError } from '../../src/errors';

/** amqplib 2.x's texts, as it throws them from `connect` (see src/amqp/connect-error.ts). */
const LOGIN_REFUSED = new Error(
  'Handshake terminated by server: 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile."',
);
const VHOST_CLOSED = new Error('Expected ConnectionOpenOk; got <ConnectionClose channel:0>');

describe('connectRefusal', () => {
  it('maps a refused login to ACCESS_REFUSED, keeping the broker reason and the cause, without the password', () => {
    const err = connectRefusal(LOGIN_REFUSED, 'amqp://guest:s3cret@mq:5672/');
    expect(err).toBeInstanceOf(BrokerRefusedError);
    expect(err).toBeInstanceOf(BrokerError);
    expect(err!.code).toBe('ACCESS_REFUSED');
    expect(err!.cause).toBe(LOGIN_REFUSED);
    expect(err!.message).toContain('ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN');
    expect(err!.message).toContain('amqp://guest:***@mq:5672/');
    expect(err!.message).not.toContain('s3cret');
  });

  it('maps a connection.close during connection.open to VHOST_NOT_ALLOWED naming the vhost', () => {
    const err = connectRefusal(VHOST_CLOSED, 'amqp://guest:pw@mq/nope');
    expect(err!.code).toBe('VHOST_NOT_ALLOWED');
    expect(err!.cause).toBe(VHOST_CLOSED);
    expect(err!.message).toContain('vhost "nope"');
    expect(err!.message).toContain('NOT_ALLOWED');
    expect(err!.message).not.toContain(':pw@');
  });

  it('maps a handshake close with 530 to VHOST_NOT_ALLOWED with the broker text', () => {
    const err = connectRefusal(new Error('Handshake terminated by server: 530 (NOT-ALLOWED) with message "NOT_ALLOWED - vhost x not found"'), 'amqp://mq/x');
    expect(err!.code).toBe('VHOST_NOT_ALLOWED');
    expect(err!.message).toContain('NOT_ALLOWED - vhost x not found');
  });

  it('leaves network and other failures to the retry loop', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5672'), { code: 'ECONNREFUSED' });
    expect(connectRefusal(refused, 'amqp://mq')).toBeUndefined();
    expect(connectRefusal(new Error('Socket closed abruptly during opening handshake'), 'amqp://mq')).toBeUndefined();
    expect(connectRefusal(new Error('Handshake terminated by server: 541 (INTERNAL-ERROR)'), 'amqp://mq')).toBeUndefined();
    expect(connectRefusal('not an error', undefined)).toBeUndefined();
  });
});

describe('vhostOf', () => {
  it('reads the decoded path, "/" when there is none', () => {
    expect(vhostOf('amqp://u:p@h:5672')).toBe('/');
    expect(vhostOf('amqp://u:p@h:5672/')).toBe('/');
    expect(vhostOf('amqp://h/%2F')).toBe('/');
    expect(vhostOf('amqp://h/prod')).toBe('prod');
    expect(vhostOf('not a url')).toBeUndefined();
  });
});

describe('notConnected', () => {
  it('names every broker without its password, the timeout and the last error', () => {
    const last = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    const err = notConnected(['amqp://u:pw@127.0.0.1:1', 'amqp://u:pw@other:2'], 1000, { err: last, url: 'amqp://u:pw@127.0.0.1:1' });
    expect(err).toBeInstanceOf(BrokerError);
    expect(err).not.toBeInstanceOf(BrokerRefusedError);
    expect(err.code).toBe('NOT_CONNECTED');
    expect(err.cause).toBe(last);
    expect(err.message).toBe(
      'cannot connect to the broker at amqp://u:***@127.0.0.1:1, amqp://u:***@other:2 within 1s (amqp.connectTimeout); ' +
        'last error (amqp://u:***@127.0.0.1:1): connect ECONNREFUSED 127.0.0.1:1',
    );
  });

  it('says so when no attempt finished', () => {
    expect(notConnected(['amqp://h'], 10_000, undefined).message).toContain('within 10s (amqp.connectTimeout); no attempt finished');
  });
});
