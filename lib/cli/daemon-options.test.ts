import { expect } from 'chai';
import { helpText, parseCommand } from './args.ts';
import { clusterDaemonConfig, daemonOptions, hostPortFrom, logConfigFrom, logLevelFrom } from './daemon-options.ts';

const spec = {
  name: 'demo-daemon',
  summary: 'x',
  options: daemonOptions({ listen: { type: 'string', default: '0.0.0.0:1', value: 'HOST:PORT', description: 'Listener.' } }, 'Kube config of the demo.'),
};

describe('cli/daemon-options', () => {
  it('adds --kubeconfig (described per daemon), --log-level and --log-format to a main\'s own options', () => {
    expect(Object.keys(spec.options)).to.deep.equal(['listen', 'kubeconfig', 'log-level', 'log-format']);
    const help = helpText(spec);
    expect(help).to.match(/--kubeconfig FILE +Kube config of the demo\./);
    expect(help).to.match(/--log-format FORMAT +json or text\. \(default: json\)/);
    const opts = parseCommand(spec, ['--kubeconfig', '/k', '--log-level', 'debug']);
    expect(opts).to.deep.equal({ listen: '0.0.0.0:1', kubeconfig: '/k', 'log-level': 'debug', 'log-format': 'json' });
  });

  it('log level: the flag, else $LOG_LEVEL, else info; log format json or text; each bad value is a problem', () => {
    const problems: string[] = [];
    expect(logLevelFrom(undefined, {}, problems)).to.equal('info');
    expect(logLevelFrom(undefined, { LOG_LEVEL: 'warn' }, problems)).to.equal('warn');
    expect(logConfigFrom({ 'log-level': 'debug', 'log-format': 'text' }, { LOG_LEVEL: 'warn' }, problems)).to.deep.equal({ logLevel: 'debug', logFormat: 'text' });
    expect(problems).to.deep.equal([]);
    logConfigFrom({ 'log-level': 'loud', 'log-format': 'xml' }, {}, problems);
    expect(problems).to.deep.equal(['log level "loud" is not one of error, warn, info, debug', '--log-format must be json or text']);
  });

  it('HOST:PORT: parsed, or a problem naming the flag', () => {
    const problems: string[] = [];
    expect(hostPortFrom('127.0.0.1:0', '--listen', problems)).to.deep.equal({ host: '127.0.0.1', port: 0 });
    expect(hostPortFrom('nope', '--mgmt', problems)).to.deep.equal({ host: '', port: 0 });
    expect(problems).to.deep.equal(['--mgmt: "nope" is not HOST:PORT']);
  });

  it('cluster daemons: namespace from the flag or $OPENEBS_NAMESPACE, Kubernetes only when configured, bad values listed', () => {
    const problems: string[] = [];
    expect(clusterDaemonConfig({ 'log-format': 'json' }, {}, problems)).to.deep.equal({ logLevel: 'info', logFormat: 'json', namespace: 'openebs' });
    expect(clusterDaemonConfig({ 'log-format': 'json', kubeconfig: '/k' }, { OPENEBS_NAMESPACE: 'cstor' }, problems)).to.deep.equal({
      logLevel: 'info',
      logFormat: 'json',
      namespace: 'cstor',
      kube: { kubeconfigPath: '/k' },
    });
    expect(clusterDaemonConfig({ 'log-format': 'json' }, { KUBECONFIG: '/env/k' }, problems).kube).to.deep.equal({});
    expect(problems).to.deep.equal([]);
    clusterDaemonConfig({ 'log-format': 'json', namespace: 'Bad_NS', advertise: 'a b' }, {}, problems);
    expect(problems).to.have.length(2);
    expect(problems[0]).to.match(/^namespace "Bad_NS" is invalid: /);
    expect(problems[1]).to.equal('--advertise "a b" is not a host');
  });
});
