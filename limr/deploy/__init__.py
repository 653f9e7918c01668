"""The container deployment (`make up`, `limr deploy`; docs/deploy.md): the Helm chart run as Docker containers.

`plan` turns `helm template` output into container specs (commands, env, ports, mounts, security) the way the
kubelet and KubeRay would run the pods, so the deployment cannot drift from the chart; `docker` runs them with the
Docker CLI on internal networks, publishing chosen ports on the host's loopback only.
"""
