//! `flashsale infra`.

use std::path::PathBuf;

use clap::Args;

use super::prelude::Global;

/// Write a CloudFormation template for the whole CDN side of the sale, from
/// site.toml: a private S3 bucket (origin access control, TLS only), the
/// CloudFront distribution (pages, fingerprinted assets, sale.js with its own
/// cache policy, the order path /o/* to the gates through the edge function),
/// the function and its KeyValueStore, and an IAM role for CI (GitHub OIDC)
/// with just what publish, open, close, check --remote and edge stage call.
///
/// Parameters: GateOrigin (the gates' HTTPS host), DomainName and
/// CertificateArn (optional), GitHubRepository (owner/name),
/// GitHubOidcProviderArn (empty: create it). Deploy:
///
///   flashsale infra -o sale.cfn.json
///   aws cloudformation deploy --template-file sale.cfn.json --stack-name
///     flashsale-<sale> --capabilities CAPABILITY_IAM --parameter-overrides
///     GateOrigin=gates.example.com GitHubRepository=shop/sale
///
/// Its outputs are what site.toml's [publish] and [edge] sections and the
/// workflow's role-to-assume need.
#[derive(Args, Debug)]
pub(super) struct InfraArgs {
    /// Write it here (atomically) instead of to stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
}

pub(super) fn run(g: &Global, a: InfraArgs) -> anyhow::Result<()> {
    let config = g.sale()?;
    let template = crate::edge::infra::template(&config);
    let text = serde_json::to_string_pretty(&template)? + "\n";
    super::prelude::write_or_print(a.output.as_deref(), &text)?;
    if let Some(path) = &a.output {
        g.say(format!(
            "Wrote {}: the CDN side of `{}` ({} bytes). Deploy it with\n  aws cloudformation deploy --template-file {} --stack-name flashsale-{} --capabilities CAPABILITY_IAM --parameter-overrides GateOrigin=<gates' host> GitHubRepository=<owner/name>",
            path.display(),
            config.name,
            text.len(),
            path.display(),
            config.name
        ));
    }
    Ok(())
}
