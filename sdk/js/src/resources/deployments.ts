import { parseDeployment, type Deployment, type DeploymentChannel, type DeploymentStatus, type JsonObject, type Page } from "../models.js";
import { Resource, type IterateParams, type PageParams } from "./base.js";

export class Deployments extends Resource {
  list(params: PageParams = {}): Promise<Page<Deployment>> {
    return this.page(this.path("deployments"), parseDeployment, { limit: params.limit, cursor: params.cursor });
  }

  iterate(params: IterateParams = {}): AsyncGenerator<Deployment, void, undefined> {
    return this.paginate(this.path("deployments"), parseDeployment, {}, params.pageSize);
  }

  /** (deployment:update) */
  create(params: {
    channel: DeploymentChannel;
    name: string;
    config?: JsonObject | undefined;
    status?: DeploymentStatus | undefined;
  }): Promise<Deployment> {
    const json = { channel: params.channel, name: params.name, config: params.config ?? {}, status: params.status ?? "active" };
    return this.json(parseDeployment, "POST", this.path("deployments"), { json });
  }
}
