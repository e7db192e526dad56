import{createRequire as __pipelineCreateRequire}from'node:module';const require=__pipelineCreateRequire(import.meta.url);
import{a,b,c,d}from"./chunk-XFT73M24.js";import"./chunk-JRGNSPXU.js";import"./chunk-UZMZCFOP.js";export{a as KubeApiError,d as KubeClient,c as kubeconfigSecrets,b as loadKubeConfig};
